/**
 * scale (scripts/bench/README.md, issue #18): rule planning and apply for synthetic 10 / 1,000 / 10,000 containers.
 * No Docker, no daemon: the modules the daemon uses (planContainer, IncrementalPlan, PendingChanges,
 * renderTable, renderElementChanges, FirewallEnforcer, BridgeEnforcer), and nft spawned as its applier
 * (runNft with `netns`: `ip netns exec NS nft -f -`) in a fresh scratch network namespace, so the host's
 * ruleset is never touched. nft runs are timed in a small plain-node worker (lib.ts nftWorker), so this
 * process's size (10,000 plans) does not inflate them. Targets are printed beside the figures.
 *
 * Synthetic containers look like Docker 20.10's: every published port twice (0.0.0.0 and ::), one
 * IPv4 address, 1 or 2 published tcp ports (every third container has 2) on distinct host ports,
 * every tenth bound to a specific host address; allowances rotate between `any`, one /24, and a /16
 * plus a /32 (so the IPv4 side carries 1–2 source blocks per port, and the IPv6 side is closed or open).
 *
 * 1. planning + render of everything (what a full replace, a drift check, `status` cost).
 * 2. full table load of 10,000 containers (target ≤ 1 s): first load into an empty namespace, replaces,
 *    one element kind at a time, and the largest host the synthetic scheme expresses (27,000
 *    containers: distinct host ports up to 65,535); nft CPU from the worker's children's ticks. Floor:
 *    `nft -f` of the empty table in the same namespace.
 * 3. per-event cost with 10 / 1,000 / 10,000 tracked containers: the parts (planContainer +
 *    IncrementalPlan.set + PendingChanges + renderElementChanges + one element transaction, adds and
 *    deletes apart) and end to end through FirewallEnforcer and nftablesBackend({ netns }) (its nft is
 *    spawned from this big process); CPU per event (this process + its nft); the drift check alone, and
 *    the same events while drift checks run (target: p99 ≤ 1.5 × the p99 without). Growth 10 → 10,000
 *    target ≤ 2. Floor of the transaction: the same three elements into a chain-less scratch table.
 * 4. the bridge filter, the same way: BridgeEnforcer + nftBridgeFilter({ netns }) with 10 / 1,000 /
 *    10,000 filtered ports (the veth lookup handed in), one container coming and going, CPU per event,
 *    drift check alone and events during drift checks.
 */
import type { ContainerFacts } from '../../src/domain/facts.js';
import { bridgeDecision, bridgeInput, syntheticInput } from './synthetic.js';
import { Writable } from 'node:stream';
import {
  IncrementalPlan, PendingChanges, diffElements, planAll, planContainer, type ContainerElements, type FirewallPlan, type PlanOptions,
} from '../../src/domain/firewall/plan.js';
import { nftablesBackend } from '../../src/adapters/nftables/backend.js';
import { FirewallEnforcer } from '../../src/app/firewall-enforcer.js';
import { FirewallStateFile } from '../../src/app/firewall-state.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BridgeEnforcer } from '../../src/app/bridge-enforcer.js';
import { nftBridgeFilter } from '../../src/adapters/nftables/bridge-backend.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { createLogger } from '../../src/app/logger.js';
import { renderElementChanges, renderTable } from '../../src/adapters/nftables/render.js';
import {
  childrenCpuMs, cpuMs, createScratchTable, elementTransaction, fmtStats, main, median, ms, nftJson, nftWorker, printJson, ratio, say, scratchNetns, stats, timed, type Stats,
} from './lib.js';

const SIZES = [10, 1_000, 10_000] as const;
const OPTIONS: PlanOptions = { defaultDeny: true, bridges: ['docker0', 'dwtest0'] };
/** Issue #18's targets: a full load of 10,000 containers, per-event growth 10 → 10,000, events during a drift check. */
const LOAD_TARGET_MS = 1_000;
const GROWTH_TARGET = 2;
const DRIFT_TARGET = 1.5;

const syntheticContainer = (i: number): ContainerElements => planContainer(...syntheticInput(i));

const synthetic = (n: number): ContainerElements[] => Array.from({ length: n }, (_, i) => syntheticContainer(i));

function sizes(plan: FirewallPlan): { ports: number; allows: number; endpoints: number } {
  return { ports: plan.ports.length, allows: plan.allows.length, endpoints: plan.endpoints.length };
}

await main('scale', 175, { hostTable: false, docker: false, daemon: false }, async () => {
  // ---- 1. planning + render
  const planning: Record<string, unknown> = {};
  say('scale: planning + render of the whole table (pure, in-process): what a replace, a drift check or `status` costs');
  for (const n of SIZES) {
    const reps = n <= 10 ? 200 : n <= 1_000 ? 20 : 5;
    const facts: number[] = [];
    const build: number[] = [];
    const plan: number[] = [];
    const all: number[] = [];
    const render: number[] = [];
    let last: FirewallPlan | null = null;
    let bytes = 0;
    for (let r = 0; r <= reps; r++) { // r = 0 warms the JIT up and is not counted
      const inputs = Array.from({ length: n }, (_, i) => syntheticInput(i));
      const [containers, tFacts] = await timed(() => inputs.map(([f, d]) => planContainer(f, d)));
      const [incremental, tBuild] = await timed(() => {
        const p = new IncrementalPlan();
        for (const c of containers) p.set(c);
        return p;
      });
      const [p, tPlan] = await timed(() => incremental.plan(OPTIONS));
      const [, tAll] = await timed(() => planAll(containers, OPTIONS));
      const [script, tRender] = await timed(() => renderTable(p));
      if (r === 0) continue;
      facts.push(tFacts);
      build.push(tBuild);
      plan.push(tPlan);
      all.push(tAll);
      render.push(tRender);
      last = p;
      bytes = script.length;
    }
    const row = {
      planContainer_ms: median(facts), incremental_set_all_ms: median(build), incremental_plan_ms: median(plan), planAll_ms: median(all),
      renderTable_ms: median(render), script_bytes: bytes, elements: sizes(last!),
    };
    planning[String(n)] = row;
    say(`  ${String(n).padStart(6)} containers: planContainer×n ${ms(row.planContainer_ms)}  IncrementalPlan.set×n ${ms(row.incremental_set_all_ms)}  .plan() ${ms(row.incremental_plan_ms)}  (planAll ${ms(row.planAll_ms)})  renderTable ${ms(row.renderTable_ms)}  (${(bytes / 1024).toFixed(0)} KiB; ${JSON.stringify(row.elements)}; median of ${reps})`);
  }

  // ---- 2. full table load, 10,000 containers, in a fresh namespace
  const netns = scratchNetns();
  const big = planAll(synthetic(10_000), OPTIONS);
  const bigScript = renderTable(big);
  const empty = renderTable(planAll([], OPTIONS));
  const nft = nftWorker();
  const first = await nft.runCpu(bigScript, netns);
  const firstLoad = first.ms;
  // Verify the load by counting every allowance shard (open-to-all ports are in their own sets).
  const loaded = nftJson(['list', 'table', 'inet', 'dockwarden'], netns);
  const inKernel = countElements(loaded, /^allow4_/);
  const expected4 = big.allows.filter((a) => a.hostAddr.family === 4 && a.source.prefix > 0).length;
  if (inKernel !== expected4) throw new Error(`allow4_* hold ${inKernel} elements after the load, expected ${expected4}`);
  const replaces: Array<{ ms: number; cpuMs: number }> = [];
  for (let r = 0; r < 3; r++) replaces.push(await nft.runCpu(bigScript, netns));
  const floors: number[] = [];
  for (let r = 0; r < 5; r++) floors.push(await nft.run(empty, netns));
  const load1k = renderTable(planAll(synthetic(1_000), OPTIONS));
  const loads1k: number[] = [];
  for (let r = 0; r < 3; r++) loads1k.push(await nft.run(load1k, netns));
  // Which sets cost what: the same 10,000 containers, one kind of element at a time.
  const bySet: Record<string, number> = {};
  const open = big.allows.filter((a) => a.source.prefix === 0);
  const blocks = big.allows.filter((a) => a.source.prefix > 0);
  for (const [name, plan] of [
    ['endpoints (hash)', { ...big, ports: [], allows: [] }],
    ['ports + wildcard (hash)', { ...big, allows: [], endpoints: [] }],
    ['open to all (hash)', { ...big, ports: [], allows: open, endpoints: [] }],
    ['source blocks (64 interval sets)', { ...big, ports: [], allows: blocks, endpoints: [] }],
  ] as const) {
    bySet[name] = round(await nft.run(renderTable(plan), netns));
  }
  // The largest host the synthetic scheme can express (distinct host ports up to 65,535): what a load
  // costs there, against the applier's 30 s tool timeout.
  const largest = 27_000;
  const largestScript = renderTable(planAll(synthetic(largest), OPTIONS));
  const largestLoad = await nft.runCpu(largestScript, netns);
  await nft.run(bigScript, netns); // back to 10,000 for the per-event part
  const floorMs = median(floors);
  const replaceMs = median(replaces.map((r) => r.ms));
  const load = {
    by_set_ms: bySet, first_ms: round(firstLoad), first_cpu_ms: first.cpuMs, replace_ms: replaceMs, replace_cpu_ms: median(replaces.map((r) => r.cpuMs)),
    floor_empty_table_ms: floorMs, ratio_first: ratio(firstLoad, floorMs), ratio_replace: ratio(replaceMs, floorMs), load_1000_ms: median(loads1k),
    largest: { containers: largest, script_bytes: largestScript.length, ms: round(largestLoad.ms), cpu_ms: largestLoad.cpuMs },
    met: replaceMs <= LOAD_TARGET_MS,
  };
  say('scale: full table load in a scratch netns (nft -f via ip netns exec, as runNft with netns)');
  say(`  10,000 containers (${(bigScript.length / 1024).toFixed(0)} KiB, ${big.allows.length} allow, ${big.ports.length} ports, ${big.endpoints.length} endpoints): first load ${ms(firstLoad)} (nft CPU ${ms(first.cpuMs)}), replace ${ms(replaceMs)} (median of 3, nft CPU ${ms(load.replace_cpu_ms)}); allow4_* verified (${inKernel} elements)  [target ≤ ${ms(LOAD_TARGET_MS)}: ${load.met ? 'met' : 'NOT met'}]`);
  say(`  1,000 containers: load ${ms(load.load_1000_ms)} (median of 3)`);
  say(`  10,000 containers, one kind of element at a time: ${Object.entries(bySet).map(([k, v]) => `${k} ${ms(v)}`).join(', ')}`);
  say(`  ${largest.toLocaleString('en')} containers (${(largestScript.length / 1024).toFixed(0)} KiB): load ${ms(largestLoad.ms)}, nft CPU ${ms(largestLoad.cpuMs)} (the applier kills nft after 30 s)`);
  say(`  floor: empty table ${ms(floorMs)} (median of 5)  →  ratio first ${load.ratio_first}, replace ${load.ratio_replace}`);

  // ---- 3. per-event cost at 10 / 1,000 / 10,000 tracked containers
  const scratch = await createScratchTable(netns);
  const txFloor: number[] = [];
  for (let r = 0; r < 15; r++) {
    txFloor.push(await nft.run(elementTransaction(scratch, 20_000 + r, '10.99.0.1', 'add'), netns));
    await nft.run(elementTransaction(scratch, 20_000 + r, '10.99.0.1', 'delete'), netns);
  }
  const floorTx = median(txFloor);
  const log = createLogger('fatal', new Writable({ write: (_c, _e, done) => done() }));
  say('scale: per-event cost (one container starts or stops) with N tracked containers, as FirewallEnforcer does it');
  const perEvent: Record<string, Record<string, number>> = {};
  const endToEnd: Record<string, Stats> = {};
  const endToEndSplit: Record<string, { start: number; stop: number }> = {};
  const fullReplan: Record<string, number> = {};
  const drift: Record<string, number> = {};
  const duringDrift: Record<string, Stats & { checks: number; ratio_p99: number }> = {};
  const cpuPerEvent: Record<string, number> = {};
  /** Of it, the nft processes' (10 ms ticks): the kernel's work on the sets shows there. */
  const nftCpuPerEvent: Record<string, number> = {};
  for (const n of SIZES) {
    const reps = n <= 1_000 ? 30 : 12; // even: the coming-and-going container ends up gone
    const inputs = Array.from({ length: n }, (_, i) => syntheticInput(i));
    const [extraFacts, extraDecision] = syntheticInput(n + 7); // distinct ports and address
    const gone: ContainerElements = { containerId: extraFacts.id, claims: [], endpoints: [] };

    // End to end: the daemon's FirewallEnforcer and nftables backend, in the scratch namespace, and its
    // boot-baseline state file in a scratch directory. The first flush replaces the table with all N;
    // then one container comes and goes.
    const stateDir = mkdtempSync(join(tmpdir(), 'dw-scale-state-'));
    const enforcer = new FirewallEnforcer(nftablesBackend({ netns }), log, OPTIONS, new FirewallStateFile(stateDir));
    await Promise.all(inputs.map(([facts, decision]) => enforcer.apply({ facts, decision })));
    const e2e: number[] = [];
    const e2eStart: number[] = [];
    const e2eStop: number[] = [];
    const event = (r: number): Promise<void> => (r % 2 === 0 ? enforcer.apply({ facts: extraFacts, decision: extraDecision }) : enforcer.forget(extraFacts.id));
    await event(0); // warm-up
    // CPU of this process and of the nft it spawns (the daemon's share of an event), per event.
    const cpu0 = cpuMs();
    const nftCpu0 = childrenCpuMs();
    for (let r = 1; r <= reps; r++) {
      const [, t] = await timed(() => event(r));
      e2e.push(t);
      (r % 2 === 0 ? e2eStart : e2eStop).push(t);
    }
    cpuPerEvent[String(n)] = round((cpuMs() - cpu0) / reps);
    nftCpuPerEvent[String(n)] = round((childrenCpuMs() - nftCpu0) / reps);
    if (reps % 2 === 0) await enforcer.forget(extraFacts.id); // r = reps was an apply
    endToEnd[String(n)] = stats(e2e);
    endToEndSplit[String(n)] = { start: median(e2eStart), stop: median(e2eStop) };
    // The periodic drift check (every 30 s by default) reads the whole table: time it alone, then the
    // same events as above while one runs, back to back (target: p99 ≤ 1.5 × the p99 without).
    const driftRuns: number[] = [];
    for (let r = 0; r < (n >= 10_000 ? 2 : 5); r++) {
      const [found, t] = await timed(() => enforcer.repairDrift());
      if (found !== null) throw new Error(`drift found in the scratch table: ${found}`);
      driftRuns.push(t);
    }
    drift[String(n)] = median(driftRuns);
    const during: number[] = [];
    let checks = 0;
    while (during.length < reps) {
      let checking = true;
      checks++;
      const check = enforcer.repairDrift().finally(() => (checking = false));
      do {
        const [, t] = await timed(() => event(during.length));
        during.push(t);
      } while (checking && during.length < reps);
      if ((await check) !== null) throw new Error('drift found in the scratch table while events ran');
    }
    if (during.length % 2 === 1) await enforcer.forget(extraFacts.id); // the last event was an apply
    duringDrift[String(n)] = { ...stats(during), checks, ratio_p99: ratio(stats(during).p99, endToEnd[String(n)]!.p99) };
    rmSync(stateDir, { recursive: true, force: true });

    // The same step by step, each part timed (the table holds the N containers; the extra is gone).
    const plan = new IncrementalPlan();
    const pending = new PendingChanges();
    for (const [facts, decision] of inputs) plan.set(planContainer(facts, decision));
    const parts = { planContainer: [] as number[], incrementalSet: [] as number[], pending: [] as number[], renderElementChanges: [] as number[], nft: [] as number[], nftAdd: [] as number[], nftDelete: [] as number[], total: [] as number[] };
    for (let r = 0; r <= reps; r++) {
      const [elements, tPlanC] = await timed(() => (r % 2 === 0 ? planContainer(extraFacts, extraDecision) : gone));
      const [diff, tSet] = await timed(() => plan.set(elements));
      const [taken, tPending] = await timed(() => {
        pending.record(diff);
        return pending.take();
      });
      const [script, tRender] = await timed(() => renderElementChanges(taken));
      const tNft = await nft.run(script, netns);
      if (r === 0) continue; // warm-up
      parts.planContainer.push(tPlanC);
      parts.incrementalSet.push(tSet);
      parts.pending.push(tPending);
      parts.renderElementChanges.push(tRender);
      parts.nft.push(tNft);
      (r % 2 === 0 ? parts.nftAdd : parts.nftDelete).push(tNft);
      parts.total.push(tPlanC + tSet + tPending + tRender + tNft);
    }
    if (reps % 2 === 0) await nft.run(renderElementChanges(plan.set(gone)), netns);
    perEvent[String(n)] = Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, median(v)]));

    // For reference: the full re-plan the enforcer did per event before it became incremental.
    const all = inputs.map(([facts, decision]) => planContainer(facts, decision));
    const before = planAll(all, OPTIONS);
    const replan: number[] = [];
    for (let r = 0; r < (n >= 10_000 ? 3 : 10); r++) replan.push((await timed(() => diffElements(before, planAll([...all, syntheticContainer(n + 7)], OPTIONS))))[1]);
    fullReplan[String(n)] = median(replan);

    const row = perEvent[String(n)]!;
    say(`  ${String(n).padStart(6)} tracked: planContainer ${ms(row.planContainer!)}  IncrementalPlan.set ${ms(row.incrementalSet!)}  PendingChanges ${ms(row.pending!)}  renderElementChanges ${ms(row.renderElementChanges!)}  nft ${ms(row.nft!)}  = ${ms(row.total!)} (median of ${reps})`);
    say(`  ${' '.repeat(6)}          nft: adding the container's elements ${ms(row.nftAdd!)}, deleting them ${ms(row.nftDelete!)} (medians)`);
    say(`  ${' '.repeat(6)}          end to end FirewallEnforcer.apply/forget + nftablesBackend: ${fmtStats(endToEnd[String(n)]!)}; start ${ms(endToEndSplit[String(n)]!.start)}, stop ${ms(endToEndSplit[String(n)]!.stop)} (medians)`);
    say(`  ${' '.repeat(6)}          CPU per event (this process + its nft): ${ms(cpuPerEvent[String(n)]!)}, of which nft ${ms(nftCpuPerEvent[String(n)]!)}`);
    say(`  ${' '.repeat(6)}          events while drift checks run: ${fmtStats(duringDrift[String(n)]!)} over ${duringDrift[String(n)]!.checks} check(s); p99 / p99 without ${duringDrift[String(n)]!.ratio_p99} [target ≤ ${DRIFT_TARGET}]`);
    say(`  ${' '.repeat(6)}          drift check (repairDrift, no drift) ${ms(drift[String(n)]!)};  for reference, a full re-plan (planAll + diffElements, the per-event path before 13e4fea) ${ms(fullReplan[String(n)]!)}`);
  }
  const at10 = perEvent['10']!;
  const at10k = perEvent['10000']!;
  const growth = Object.fromEntries(Object.keys(at10).map((k) => [k, ratio(at10k[k]!, at10[k]!)]));
  const e2eGrowth = ratio(endToEnd['10000']!.p50, endToEnd['10']!.p50);
  say(`  floor: one element transaction into an empty chain-less table in the same netns ${ms(floorTx)} (median of 15)`);
  say(`  cost@10k / cost@10: parts total ${growth.total} (planContainer ${growth.planContainer}, IncrementalPlan.set ${growth.incrementalSet}, PendingChanges ${growth.pending}, render ${growth.renderElementChanges}, nft ${growth.nft}: add ${growth.nftAdd}, delete ${growth.nftDelete}); end to end p50 ${e2eGrowth}`);
  say(`  per-event / transaction floor: @10 ${ratio(at10.total!, floorTx)}, @1k ${ratio(perEvent['1000']!.total!, floorTx)}, @10k ${ratio(at10k.total!, floorTx)}; end to end @10k p50 ${ratio(endToEnd['10000']!.p50, floorTx)}`);
  const planning10k = at10k.planContainer! + at10k.incrementalSet! + at10k.pending! + at10k.renderElementChanges!;
  const planning10 = at10.planContainer! + at10.incrementalSet! + at10.pending! + at10.renderElementChanges!;
  const planningFlat = ratio(planning10k, planning10) <= GROWTH_TARGET;
  const stopGrowth = ratio(endToEndSplit['10000']!.stop, endToEndSplit['10']!.stop);
  const startGrowth = ratio(endToEndSplit['10000']!.start, endToEndSplit['10']!.start);
  const flat = planningFlat && [growth.nftAdd!, growth.nftDelete!, startGrowth, stopGrowth].every((g) => g <= GROWTH_TARGET);
  const driftMet = SIZES.every((n) => duringDrift[String(n)]!.ratio_p99 <= DRIFT_TARGET);
  const cpuGrowth = ratio(cpuPerEvent['10000']!, cpuPerEvent['10']!);
  say(`  VERDICT: planning per event is ${planningFlat ? 'flat' : 'NOT flat'} (${ms(planning10)} at 10 → ${ms(planning10k)} at 10,000).`);
  say(`    nft: adding a container's elements ${ms(at10.nftAdd!)} → ${ms(at10k.nftAdd!)} (×${growth.nftAdd}); deleting them ${ms(at10.nftDelete!)} → ${ms(at10k.nftDelete!)} (×${growth.nftDelete}) [target ≤ ${GROWTH_TARGET}].`);
  say(`    end to end: a start ${ms(endToEndSplit['10']!.start)} → ${ms(endToEndSplit['10000']!.start)} (×${startGrowth}), a stop ${ms(endToEndSplit['10']!.stop)} → ${ms(endToEndSplit['10000']!.stop)} (×${stopGrowth}) [target ≤ ${GROWTH_TARGET}]; ${flat ? 'flat' : 'NOT flat'} overall.`);
  say(`    CPU per event ${ms(cpuPerEvent['10']!)} @10, ${ms(cpuPerEvent['1000']!)} @1k, ${ms(cpuPerEvent['10000']!)} @10k (×${cpuGrowth}); of which nft ${SIZES.map((n) => ms(nftCpuPerEvent[String(n)]!)).join(' / ')}.`);
  say(`    a drift check takes ${ms(drift['10000']!)} at 10,000; events meanwhile: p99 ×${SIZES.map((n) => duringDrift[String(n)]!.ratio_p99).join(' / ×')} of the p99 without (@10 / 1k / 10k) [target ≤ ${DRIFT_TARGET}: ${driftMet ? 'met' : 'NOT met'}].`);

  // ---- 4. the bridge filter: per-event cost with N filtered ports, through the real BridgeEnforcer and
  // nftBridgeFilter({ netns }) (the veth lookup is handed in: port `vbN` for container N).
  say('scale: bridge filter per event (one container starts or stops) with N filtered ports, BridgeEnforcer + nftBridgeFilter');
  const bridgePolicy = parsePolicy('version: 1\n', 'bench.yaml');
  if (!bridgePolicy.ok) throw new Error('bench policy');
  const bridgeHooks = { onDriftRepaired: () => {}, onSpoofing: () => {}, onFilterFailed: (_c: unknown, error: string) => { throw new Error(`bridge filter failed: ${error}`); } };
  const bridgeEvents: Record<string, Stats & { cpu_ms: number; drift_ms: number; during_drift: Stats; ratio_p99_during_drift: number }> = {};
  for (const n of SIZES) {
    const inputs = Array.from({ length: n }, (_, i) => bridgeInput(i));
    await nftBridgeFilter({ netns }).remove(); // a table left by the last size would be adopted, not replaced
    const bridge = new BridgeEnforcer(nftBridgeFilter({ netns }), log, bridgeHooks);
    const applyOne = (facts: ContainerFacts): Promise<void> => bridge.apply({ facts, decision: bridgeDecision(facts, bridgePolicy.policy.network) });
    await Promise.all(inputs.map(applyOne));
    if (bridge.ports().length !== n) throw new Error(`bridge: ${bridge.ports().length} ports filtered, expected ${n}`);
    const extra = bridgeInput(n + 7);
    const reps = n <= 1_000 ? 30 : 12;
    const event = (r: number): Promise<void> => (r % 2 === 0 ? applyOne(extra) : bridge.forget(extra.id));
    await event(0);
    const times: number[] = [];
    const cpu0 = cpuMs();
    for (let r = 1; r <= reps; r++) times.push((await timed(() => event(r)))[1]);
    const cpu = round((cpuMs() - cpu0) / reps);
    if (reps % 2 === 0) await bridge.forget(extra.id);
    const [found, driftMs] = await timed(() => bridge.repairDrift());
    if (found !== null) throw new Error(`bridge drift in the scratch table: ${found}`);
    const during: number[] = [];
    while (during.length < reps) {
      let checking = true;
      const check = bridge.repairDrift().finally(() => (checking = false));
      do during.push((await timed(() => event(during.length)))[1]);
      while (checking && during.length < reps);
      if ((await check) !== null) throw new Error('bridge drift found while events ran');
    }
    if (during.length % 2 === 1) await bridge.forget(extra.id);
    const alone = stats(times);
    bridgeEvents[String(n)] = { ...alone, cpu_ms: cpu, drift_ms: round(driftMs), during_drift: stats(during), ratio_p99_during_drift: ratio(stats(during).p99, alone.p99) };
    say(`  ${String(n).padStart(6)} ports: ${fmtStats(alone)}; CPU per event ${ms(cpu)}; drift check ${ms(driftMs)}; events while drift checks run p99 ${ms(stats(during).p99)} (×${bridgeEvents[String(n)]!.ratio_p99_during_drift} of the p99 without) [target ≤ ${DRIFT_TARGET}]`);
  }
  const bridgeGrowth = ratio(bridgeEvents['10000']!.p50, bridgeEvents['10']!.p50);
  say(`  bridge event p50 growth 10 → 10,000: ×${bridgeGrowth} [target ≤ ${GROWTH_TARGET}]; CPU per event ×${ratio(bridgeEvents['10000']!.cpu_ms, bridgeEvents['10']!.cpu_ms)}`);

  printJson('scale', {
    planning_ms: planning,
    load_10000: load,
    per_event_ms: perEvent,
    per_event_end_to_end_ms: endToEnd,
    per_event_end_to_end_start_stop_ms: endToEndSplit,
    per_event_growth_10k_over_10: { ...growth, end_to_end_p50: e2eGrowth, end_to_end_start: startGrowth, end_to_end_stop: stopGrowth },
    transaction_floor_ms: floorTx,
    drift_check_ms: drift,
    events_during_drift_check_ms: duringDrift,
    cpu_ms_per_event: cpuPerEvent,
    nft_cpu_ms_per_event: nftCpuPerEvent,
    drift_met: driftMet,
    bridge_per_event_ms: bridgeEvents,
    bridge_growth_p50: bridgeGrowth,
    full_replan_reference_ms: fullReplan,
    flat,
  });
});

function countElements(json: unknown, sets: RegExp): number {
  const list = (json as { nftables?: Array<{ set?: { name: string; elem?: unknown[] } }> }).nftables ?? [];
  return list.reduce((n, o) => n + (o.set && sets.test(o.set.name) ? o.set.elem?.length ?? 0 : 0), 0);
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
