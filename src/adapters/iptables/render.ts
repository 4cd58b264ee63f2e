/**
 * Renders a `FirewallPlan` as an `iptables-restore --noflush` / `ip6tables-restore --noflush` payload
 * for table `filter` (DESIGN §2, iptables backend). Pure. Declaring `:DOCKWARDEN - [0:0]` in a
 * --noflush restore creates the chain or flushes it, and the whole payload is one atomic commit, so
 * every apply rewrites the chain from scratch. The chain sees forwarded traffic only (it hangs off
 * DOCKER-USER, in FORWARD): the docker-proxy path to `input` is not covered, unlike nftables.
 *
 * Rules are rendered exactly as `iptables -S` prints them, so the chain read back compares line by
 * line with the rendering (drift). No name, label or image ever reaches the payload: every value is
 * re-validated first, and comments would carry fixed text only (there are none).
 */
import type { Family, FirewallPlan, PortElement } from '../../domain/firewall/plan.js';
import type { Cidr } from '../../domain/policy/model.js';
import { assertRenderable, family as checkedFamily, ifname } from '../firewall/safe-values.js';

export const CHAIN = 'DOCKWARDEN';
export const USER_CHAIN = 'DOCKER-USER';
/** Our jump, as `iptables -S` prints it. */
export const JUMP_RULE = `-A ${USER_CHAIN} -j ${CHAIN}`;

/** What `iptables -S` shows of DOCKER-USER and our jump in it. */
export interface UserChainState {
  readonly exists: boolean;
  /** Rules that are exactly `-j DOCKWARDEN`. */
  readonly jumps: number;
  /** Whether the first rule of DOCKER-USER is that jump. */
  readonly jumpFirst: boolean;
}

/**
 * The chain's rules, in order: per port element its allowed sources (RETURN) then a DROP; with
 * `defaultDeny`, the judged endpoints (RETURN), then a DROP of new DNATed connections out of any
 * Docker bridge. Judged by the original destination, so the host port an admin sees in `docker ps`.
 * Last, direct routing: a new connection out to a Docker bridge that was not DNATed and did not come
 * from a Docker bridge was routed straight to a container address, past every rule above (Docker
 * before 28 lets it through): dropped unless that bridge is routed for the family. iptables matches
 * interfaces by name only: a bridge with a custom name is covered once dockwarden has seen it.
 */
export function renderRules(plan: FirewallPlan, family: Family): string[] {
  assertRenderable(plan);
  checkedFamily(family);

  const sources = new Map<string, Cidr[]>();
  for (const allow of plan.allows) {
    const list = sources.get(portKey(allow));
    if (list) list.push(allow.source);
    else sources.set(portKey(allow), [allow.source]);
  }
  const rules: string[] = [];
  for (const port of plan.ports.filter((p) => p.hostAddr.family === family)) {
    // --ctdir ORIGINAL: reply packets of a DNATed connection carry the DNAT state too, and would hit the DROP.
    // Every packet is judged, not only new ones, so a narrowed policy cuts established connections.
    const match = `-p ${port.proto} -m conntrack --ctstate DNAT${origDst(port)} --ctorigdstport ${port.port} --ctdir ORIGINAL`;
    for (const block of sources.get(portKey(port)) ?? []) rules.push(`-A ${CHAIN}${source(block)} ${match} -j RETURN`);
    rules.push(`-A ${CHAIN} ${match} -j DROP`);
  }
  if (plan.defaultDeny) {
    for (const e of plan.endpoints.filter((e) => e.addr.family === family)) {
      rules.push(`-A ${CHAIN} -d ${e.addr.text}/${family === 4 ? 32 : 128} -p ${e.proto} -m ${e.proto} --dport ${e.port} -m conntrack --ctstate DNAT --ctorigdstport ${e.hostPort} -j RETURN`);
    }
  }
  // Every rule from here on only drops or ends the chain for traffic no rule above has judged.
  for (const other of plan.otherBridges) rules.push(`-A ${CHAIN} -o ${ifname(other)} -j RETURN`);
  const bridges = [...plan.bridges, 'br-+'];
  if (plan.defaultDeny) {
    // Two conntrack matches, not `--ctstate NEW,DNAT`, which would mean NEW or DNAT. `br-+` is iptables' wildcard.
    for (const bridge of bridges) rules.push(`-A ${CHAIN} -o ${bridge} -m conntrack --ctstate NEW -m conntrack --ctstate DNAT -j DROP`);
  }
  for (const bridge of bridges) rules.push(`-A ${CHAIN} -i ${bridge} -m conntrack --ctstate NEW -j RETURN`);
  for (const routed of family === 4 ? plan.routed4 : plan.routed6) rules.push(`-A ${CHAIN} -o ${ifname(routed)} -j RETURN`);
  for (const bridge of bridges) rules.push(`-A ${CHAIN} -o ${bridge} -m conntrack --ctstate NEW -m conntrack ! --ctstate DNAT -j DROP`);
  return rules;
}

/**
 * The chain, replaced in one commit. Given what DOCKER-USER holds now, the same commit also makes our
 * jump its one and only first rule (creating DOCKER-USER when Docker has not yet: Docker keeps an
 * existing DOCKER-USER and its rules). A restore fails as a whole when the state changed meanwhile.
 */
export function renderRestore(plan: FirewallPlan, family: Family, userChain?: UserChainState): string {
  const jumpOk = userChain === undefined || (userChain.exists && userChain.jumps === 1 && userChain.jumpFirst);
  const repair = jumpOk ? [] : [
    ...(userChain.exists ? [] : [`-N ${USER_CHAIN}`]),
    ...deleteJumps(userChain.jumps),
    `-I ${USER_CHAIN} 1 -j ${CHAIN}`,
  ];
  return ['*filter', `:${CHAIN} - [0:0]`, ...renderRules(plan, family), ...repair, 'COMMIT', ''].join('\n');
}

/** Takes out every jump to the chain and the chain itself in one commit; DOCKER-USER stays (it is Docker's). */
export function renderRemoval(userChain: UserChainState, chainExists: boolean): string {
  const chain = chainExists ? [`-F ${CHAIN}`, `-X ${CHAIN}`] : [];
  return ['*filter', ...deleteJumps(userChain.jumps), ...chain, 'COMMIT', ''].join('\n');
}

/** `-D` by rule text removes the first match, so once per jump; a count gone stale fails the commit. */
function deleteJumps(count: number): string[] {
  return Array.from({ length: count }, () => `-D ${USER_CHAIN} -j ${CHAIN}`);
}

const portKey = (e: PortElement): string => `${e.hostAddr.text} ${e.proto} ${e.port}`;

/** `iptables -S` omits a match on every source. */
function source(block: Cidr): string {
  return block.prefix === 0 ? '' : ` -s ${block.text}`;
}

/** A wildcard binding needs no match; `iptables -S` prints a single address without its prefix. */
function origDst({ hostAddr }: PortElement): string {
  if (hostAddr.prefix === 0) return '';
  return ` --ctorigdst ${hostAddr.prefix === (hostAddr.family === 4 ? 32 : 128) ? hostAddr.address : hostAddr.text}`;
}
