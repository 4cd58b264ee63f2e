/**
 * churn-memory (scripts/bench/README.md, issue #18): the daemon's memory over container churn, through
 * the two enforcers that keep state per container (FirewallEnforcer with its boot-baseline state
 * file, BridgeEnforcer), with real nft in a fresh scratch network namespace, no Docker. N containers
 * stay (default 1,000); churners come and go, each start a new container id (as Docker gives each new
 * container), `DW_BENCH_CHURN_CONCURRENT` events at a time (a burst, as the daemon's queue hands them
 * over); both drift checks run every 2,000 events, overlapping the events. Every 10,000 events: heap
 * used and RSS after a full GC. Target: flat (the last reading within noise of the first).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { nftablesBackend } from '../../src/adapters/nftables/backend.js';
import { nftBridgeFilter } from '../../src/adapters/nftables/bridge-backend.js';
import { BridgeEnforcer } from '../../src/app/bridge-enforcer.js';
import { FirewallEnforcer } from '../../src/app/firewall-enforcer.js';
import { FirewallStateFile } from '../../src/app/firewall-state.js';
import { createLogger } from '../../src/app/logger.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { main, onCleanup, printJson, say, scratchNetns } from './lib.js';
import { bridgeDecision, bridgeInput, syntheticInput } from './synthetic.js';

const EVENTS = Number(process.env.DW_BENCH_CHURN_EVENTS ?? 100_000);
const TRACKED = Number(process.env.DW_BENCH_CHURN_TRACKED ?? 1_000);
const CONCURRENT = Number(process.env.DW_BENCH_CHURN_CONCURRENT ?? 32);
/** Churners cycle over this many slots (host ports, addresses, veths); each start is a new id. */
const SLOTS = 256;
const REPORT_EVERY = 10_000;
const DRIFT_EVERY = 2_000;
/** "Flat": heap after GC grows by no more than this from the first reading to the last. */
const FLAT_MIB = 2;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;

await main('churn-memory', 3_000, { hostTable: false, docker: false, daemon: false }, async () => {
  const netns = scratchNetns();
  const stateDir = mkdtempSync(join(tmpdir(), 'dw-churn-state-'));
  onCleanup(`state dir ${stateDir}`, () => rmSync(stateDir, { recursive: true, force: true }));
  const log = createLogger('fatal', new Writable({ write: (_c, _e, done) => done() }));
  const policy = parsePolicy('version: 1\n', 'bench.yaml');
  if (!policy.ok) throw new Error('bench policy');
  const firewall = new FirewallEnforcer(nftablesBackend({ netns }), log, { defaultDeny: true, bridges: ['docker0'] }, new FirewallStateFile(stateDir));
  const bridge = new BridgeEnforcer(nftBridgeFilter({ netns }), log, {
    onDriftRepaired: (drift) => { throw new Error(`bridge drift in the scratch table: ${drift}`); },
    onSpoofing: () => {},
    onFilterFailed: (_c, error) => { throw new Error(`bridge filter failed: ${error}`); },
  });
  const start = async (i: number, round: number): Promise<string> => {
    const [facts, decision] = syntheticInput(i, round);
    const onBridge = bridgeInput(i, round);
    await Promise.all([firewall.apply({ facts, decision }), bridge.apply({ facts: onBridge, decision: bridgeDecision(onBridge, policy.policy.network) })]);
    return facts.id;
  };
  const stop = (id: string): Promise<unknown> => Promise.all([firewall.forget(id), bridge.forget(id)]);

  await Promise.all(Array.from({ length: TRACKED }, (_, i) => start(i, 0)));
  say(`churn-memory: ${TRACKED} containers stay, churners over ${SLOTS} slots, ${CONCURRENT} events at a time, ${EVENTS} events; nft in scratch netns ${netns}`);
  const readings: Array<{ events: number; heap_mib: number; rss_mib: number; seconds: number }> = [];
  const t0 = performance.now();
  const read = (events: number): void => {
    gc();
    const { heapUsed, rss } = process.memoryUsage();
    readings.push({ events, heap_mib: mib(heapUsed), rss_mib: mib(rss), seconds: Math.round((performance.now() - t0) / 100) / 10 });
    const r = readings.at(-1)!;
    say(`  ${String(events).padStart(7)} events: heap ${r.heap_mib} MiB, RSS ${r.rss_mib} MiB (${r.seconds} s)`);
  };
  read(0);
  // Slot s holds one churner at a time: the event after its start stops it (a start and a stop each count).
  const running = new Map<number, string>();
  let events = 0;
  let round = 1;
  let drift: Promise<unknown> = Promise.resolve();
  let nextReport = REPORT_EVERY;
  while (events < EVENTS) {
    const batch: Array<Promise<unknown>> = [];
    for (let k = 0; k < CONCURRENT && events < EVENTS; k++, events++) {
      const slot = TRACKED + ((events >> 1) % SLOTS);
      const id = running.get(slot);
      if (id === undefined) batch.push(start(slot, round++).then((started) => running.set(slot, started)));
      else {
        running.delete(slot);
        batch.push(stop(id));
      }
      if (events % DRIFT_EVERY === 0) {
        // Overlapping the events, as the daemon's timer does; a drift found would be a bug.
        drift = Promise.all([drift, firewall.repairDrift().then((d) => { if (d !== null) throw new Error(`firewall drift: ${d}`); }), bridge.repairDrift()]);
      }
    }
    await Promise.all(batch);
    if (events >= nextReport || events === EVENTS) {
      await drift;
      read(events);
      nextReport += REPORT_EVERY;
    }
  }
  await drift;
  const first = readings[0]!;
  const last = readings.at(-1)!;
  const growth = Math.round((last.heap_mib - first.heap_mib) * 10) / 10;
  const flat = growth <= FLAT_MIB;
  say(`  VERDICT: heap after GC ${first.heap_mib} → ${last.heap_mib} MiB (${growth >= 0 ? '+' : ''}${growth}), RSS ${first.rss_mib} → ${last.rss_mib} MiB over ${events} events [target: flat, ≤ +${FLAT_MIB} MiB: ${flat ? 'met' : 'NOT met'}]`);
  printJson('churn-memory', { tracked: TRACKED, concurrent: CONCURRENT, events, readings, heap_growth_mib: growth, flat });
});
