import type { Family, FirewallPlan } from '../../domain/firewall/plan.js';
import type { FirewallBackend } from '../firewall/backend.js';
import type { Protocol } from '../../domain/facts.js';
import { applyChain, readAuditLists, readFilter, removeChain, type IptablesOptions } from './apply.js';
import { AUDIT_LIST, CHAIN, INPUT_CHAIN, renderInputRules, renderRules } from './render.js';

const FAMILIES: readonly Family[] = [4, 6];
/** Both chains' rules, as one text to compare with what `iptables -S` lists. */
const rendered = (plan: FirewallPlan, family: Family): string => [...renderRules(plan, family), ...renderInputRules(plan, family)].join('\n');
const label = (family: Family): string => `IPv${family}`;

/**
 * One owned chain `DOCKWARDEN` per family, jumped to first from `DOCKER-USER`, for hosts without nft.
 * Each family's chain is replaced atomically; the two families are two commits.
 */
export function iptablesBackend(options: IptablesOptions): FirewallBackend {
  // Per family, the rules we rendered and the rules `iptables -S` printed right after applying them:
  // drift compares with what the tool prints, should a version print a rule differently than rendered.
  const applied = new Map<Family, { rendered: string; listed: string }>();
  // Per list and source, the newest packet time (jiffies) already counted.
  let counted = new Map<string, number>();

  async function apply(plan: FirewallPlan): Promise<void> {
    await Promise.all(FAMILIES.map(async (family) => {
      await applyChain(plan, family, options);
      const { chain, inputChain } = await readFilter(family, options);
      applied.set(family, { rendered: rendered(plan, family), listed: [...(chain ?? []), ...(inputChain ?? [])].join('\n') });
    }));
  }

  async function familyDrift(expected: FirewallPlan, family: Family): Promise<string[]> {
    const { chain, userChain, inputChain, input } = await readFilter(family, options);
    const problems: string[] = [];
    if (chain === null) problems.push(`chain ${CHAIN} (${label(family)}) is missing`);
    if (!userChain.exists) problems.push(`DOCKER-USER (${label(family)}) is missing`);
    else if (userChain.jumps === 0) problems.push(`the jump from DOCKER-USER to ${CHAIN} (${label(family)}) is missing`);
    else if (userChain.jumps > 1) problems.push(`DOCKER-USER (${label(family)}) jumps to ${CHAIN} ${userChain.jumps} times`);
    else if (!userChain.jumpFirst) problems.push(`the jump to ${CHAIN} is not the first rule of DOCKER-USER (${label(family)})`);
    if (inputChain === null) problems.push(`chain ${INPUT_CHAIN} (${label(family)}) is missing`);
    if (input.jumps !== 1 || !input.jumpFirst) problems.push(`the jump to ${INPUT_CHAIN} is not the one first rule of INPUT (${label(family)})`);
    if (chain !== null && inputChain !== null) {
      const want = rendered(expected, family);
      const last = applied.get(family);
      if ([...chain, ...inputChain].join('\n') !== (last?.rendered === want ? last.listed : want)) {
        problems.push(`rules in ${CHAIN} or ${INPUT_CHAIN} (${label(family)}) differ from what dockwarden applied`);
      }
    }
    return problems;
  }

  return {
    name: 'iptables',
    nfTables: { tables: options.variant === 'nft' ? ['ip filter', 'ip6 filter'] : [], shared: true },
    replace: apply,
    // Rule lists have no sets, so there is no small element change: every update re-renders the whole
    // chain from the plan, still one atomic restore per family.
    update: (_diff, plan) => apply(plan()),
    // Every update rewrites the chain: a read that overlapped one is not compared element by element.
    readsWhileChanging: false,
    async drift(expected) {
      const problems = (await Promise.all(FAMILIES.map((family) => familyDrift(expected, family)))).flat();
      return problems.length === 0 ? null : problems.join('; ');
    },
    async installed() {
      const states = await Promise.all(FAMILIES.map((family) => readFilter(family, options)));
      return states.some((state) => state.chain !== null);
    },
    async remove() {
      for (const family of FAMILIES) await removeChain(family, options);
      applied.clear();
    },
    // xt_recent keeps each source's last 32 packet times: the new ones since the last reading are its
    // new connections, exact up to 32 a source and port between two readings, a lower bound beyond.
    async wouldHaveDropped() {
      const entries = await readAuditLists(options);
      const next = new Map<string, number>();
      const drops = entries.flatMap(({ list, source, stamps }) => {
        const key = `${list} ${source}`;
        const since = counted.get(key) ?? 0;
        next.set(key, Math.max(since, ...stamps));
        const [, hostAddress, proto, port] = AUDIT_LIST.exec(list)!;
        const connections = stamps.filter((stamp) => stamp > since).length;
        return connections === 0 ? [] : [{ source, hostAddress: hostAddress!, proto: proto as Protocol, port: Number(port), connections }];
      });
      counted = next;
      return drops;
    },
    async show() {
      const states = await Promise.all(FAMILIES.map((family) => readFilter(family, options)));
      return states.flatMap(({ chain, inputChain }, i) => {
        const family = FAMILIES[i]!;
        return ([[CHAIN, chain], [INPUT_CHAIN, inputChain]] as const).map(([name, rules]) => {
          const body = rules === null ? [`# chain ${name} is not installed`] : [`-N ${name}`, ...rules];
          return [`# ${label(family)}: ${family === 4 ? 'iptables' : 'ip6tables'} -S ${name}`, ...body].join('\n');
        });
      }).join('\n') + '\n';
    },
  };
}
