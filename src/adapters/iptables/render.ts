/**
 * Renders a `FirewallPlan` as an `iptables-restore --noflush` / `ip6tables-restore --noflush` payload
 * for table `filter` (docs/architecture.md "The firewall and bridge tables", iptables backend). Pure. Declaring `:DOCKWARDEN - [0:0]` in a
 * --noflush restore creates the chain or flushes it, and the whole payload is one atomic commit, so
 * every apply rewrites the chains from scratch. `DOCKWARDEN` hangs off DOCKER-USER (FORWARD) and
 * judges DNATed traffic; `DOCKWARDEN-INPUT` hangs off INPUT and judges the docker-proxy path.
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
export const INPUT_CHAIN = 'DOCKWARDEN-INPUT';
export const INPUT_JUMP_RULE = `-A INPUT -j ${INPUT_CHAIN}`;

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
 * interfaces by name only: there a bridge with a custom name is covered once dockwarden has seen it
 * (`br-+` always); DNATed connections are covered on every interface (`defaultDeny`).
 */
export function renderRules(plan: FirewallPlan, family: Family): string[] {
  assertRenderable(plan);
  checkedFamily(family);

  const sources = allowedSources(plan);
  // Audit mode: every DROP is a RETURN (its rule counter still counts), and at a published port each
  // new connection's source is recorded in an xt_recent list of that port, for "would have dropped" alerts.
  const drop = plan.audit ? 'RETURN' : 'DROP';
  const rules: string[] = [];
  for (const port of plan.ports.filter((p) => p.hostAddr.family === family)) {
    // --ctdir ORIGINAL: reply packets of a DNATed connection carry the DNAT state too, and would hit the DROP.
    // Every packet is judged, not only new ones, so a narrowed policy cuts established connections.
    const match = `-p ${port.proto} -m conntrack --ctstate DNAT${origDst(port)} --ctorigdstport ${port.port} --ctdir ORIGINAL`;
    for (const block of sources.get(portKey(port)) ?? []) rules.push(`-A ${CHAIN}${source(block)} ${match} -j RETURN`);
    if (plan.audit) rules.push(`-A ${CHAIN} ${match} -m conntrack --ctstate NEW -m recent --set --name ${auditList(port)} --mask ${FULL_MASK[family]} --rsource`);
    rules.push(`-A ${CHAIN} ${match} -j ${drop}`);
  }
  if (plan.defaultDeny) {
    for (const e of plan.endpoints.filter((e) => e.addr.family === family)) {
      rules.push(`-A ${CHAIN} -d ${e.addr.text}/${family === 4 ? 32 : 128} -p ${e.proto} -m ${e.proto} --dport ${e.port} -m conntrack --ctstate DNAT --ctorigdstport ${e.hostPort} -j RETURN`);
    }
  }
  // Every rule from here on only drops or ends the chain for traffic no rule above has judged.
  for (const other of plan.otherBridges) rules.push(`-A ${CHAIN} -o ${ifname(other)} -j RETURN`);
  const bridges = [...plan.bridges, 'br-+'];
  // Whatever the bridge's name: iptables cannot match an interface by kind, and a bridge with a custom
  // name created while dockwarden was down is in no list, so a new DNATed connection to an endpoint
  // not judged is dropped on any interface but the admin's own (firewall.otherBridges, above), where
  // the admin's own DNAT port forwards must go. Two conntrack matches, not `--ctstate NEW,DNAT` (NEW or DNAT).
  if (plan.defaultDeny) rules.push(`-A ${CHAIN} -m conntrack --ctstate NEW -m conntrack --ctstate DNAT -j ${drop}`);
  for (const bridge of bridges) rules.push(`-A ${CHAIN} -i ${bridge} -m conntrack --ctstate NEW -j RETURN`);
  for (const routed of family === 4 ? plan.routed4 : plan.routed6) rules.push(`-A ${CHAIN} -o ${ifname(routed)} -j RETURN`);
  for (const bridge of bridges) rules.push(`-A ${CHAIN} -o ${bridge} -m conntrack --ctstate NEW -m conntrack ! --ctstate DNAT -j ${drop}`);
  return rules;
}

/**
 * The host's input path, by host port: docker-proxy (Docker's userland proxy) serves from the host
 * itself what Docker does not DNAT — IPv6 clients of a container without IPv6 — so those connections
 * never reach FORWARD. Same sources as the DNAT path, every packet, both families; with
 * `ports.default: deny` the baseline's ports are closed here too. `lo` is the host's own (out of
 * scope, as for nftables). Nothing else listens on a published port's address, so nothing else is hit.
 */
export function renderInputRules(plan: FirewallPlan, family: Family): string[] {
  assertRenderable(plan);
  checkedFamily(family);
  const sources = allowedSources(plan);
  const rules: string[] = [];
  for (const port of plan.ports.filter((p) => p.hostAddr.family === family)) {
    const match = `${port.hostAddr.prefix === 0 ? '' : ` -d ${port.hostAddr.text}`} ! -i lo -p ${port.proto} -m ${port.proto} --dport ${port.port}`;
    for (const block of sources.get(portKey(port)) ?? []) rules.push(`-A ${INPUT_CHAIN}${source(block)}${match} -j RETURN`);
    if (plan.audit) rules.push(`-A ${INPUT_CHAIN}${match} -m conntrack --ctstate NEW -m recent --set --name ${auditList(port)} --mask ${FULL_MASK[family]} --rsource`);
    rules.push(`-A ${INPUT_CHAIN}${match} -j ${plan.audit ? 'RETURN' : 'DROP'}`);
  }
  return rules;
}

/** Each published port's allowed source blocks. */
function allowedSources(plan: FirewallPlan): Map<string, Cidr[]> {
  const sources = new Map<string, Cidr[]>();
  for (const allow of plan.allows) {
    const list = sources.get(portKey(allow));
    if (list) list.push(allow.source);
    else sources.set(portKey(allow), [allow.source]);
  }
  return sources;
}

/**
 * Both chains, replaced in one commit. Given what DOCKER-USER and INPUT hold now, the same commit also
 * makes each of our jumps the one and only first rule there (creating DOCKER-USER when Docker has not
 * yet: Docker keeps an existing DOCKER-USER and its rules). A restore fails as a whole when the state
 * changed meanwhile. Left out, a jump state counts as already right.
 */
export function renderRestore(plan: FirewallPlan, family: Family, userChain?: UserChainState, input?: UserChainState): string {
  return [
    '*filter', `:${CHAIN} - [0:0]`, `:${INPUT_CHAIN} - [0:0]`,
    ...renderRules(plan, family), ...renderInputRules(plan, family),
    ...repairJump(USER_CHAIN, CHAIN, userChain), ...repairJump('INPUT', INPUT_CHAIN, input),
    'COMMIT', '',
  ].join('\n');
}

/** Takes out every jump to our chains and the chains themselves in one commit; DOCKER-USER stays (it is Docker's). */
export function renderRemoval(userChain: UserChainState, chainExists: boolean, input: UserChainState = NO_JUMP, inputExists = false): string {
  const chains = [...(chainExists ? [CHAIN] : []), ...(inputExists ? [INPUT_CHAIN] : [])].flatMap((chain) => [`-F ${chain}`, `-X ${chain}`]);
  return ['*filter', ...deleteJumps(USER_CHAIN, CHAIN, userChain.jumps), ...deleteJumps('INPUT', INPUT_CHAIN, input.jumps), ...chains, 'COMMIT', ''].join('\n');
}

const NO_JUMP: UserChainState = { exists: true, jumps: 0, jumpFirst: false };

/** Nothing when `state` is one jump, first (or unknown); else every jump out and one in at the top. */
function repairJump(from: string, to: string, state: UserChainState | undefined): string[] {
  if (state === undefined || (state.exists && state.jumps === 1 && state.jumpFirst)) return [];
  return [...(state.exists ? [] : [`-N ${from}`]), ...deleteJumps(from, to, state.jumps), `-I ${from} 1 -j ${to}`];
}

/** `-D` by rule text removes the first match, so once per jump; a count gone stale fails the commit. */
function deleteJumps(from: string, to: string, count: number): string[] {
  return Array.from({ length: count }, () => `-D ${from} -j ${to}`);
}

/** The xt_recent list (`/proc/net/xt_recent/NAME`) of a published port's would-be drops: `dw-ADDR-PROTO-PORT`. */
export const auditList = (e: PortElement): string => `dw-${e.hostAddr.address}-${e.proto}-${e.port}`;
export const AUDIT_LIST = /^dw-([0-9a-f.:]+)-(tcp|udp|sctp)-(\d{1,5})$/;
/** How `iptables -S` prints a mask of every bit. */
const FULL_MASK: Readonly<Record<Family, string>> = { 4: '255.255.255.255', 6: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' };

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
