/**
 * Synthetic containers for the benches that feed the enforcers without Docker (scale, churn-memory).
 * Deterministic: the same (i, round) always gives the same container; `round` gives container i a
 * new id (Docker gives every new container one), with the same ports and addresses.
 */
import { decisionOf } from '../../test/helpers/decision.js';
import { makeFacts } from '../../test/helpers/facts.js';
import { planPorts } from '../../src/domain/bridge/ports.js';
import type { Decision, PortVerdict } from '../../src/domain/decision.js';
import type { ContainerFacts, PublishedPort } from '../../src/domain/facts.js';
import { planContainer } from '../../src/domain/firewall/plan.js';
import { parseCidr } from '../../src/domain/net/cidr.js';
import type { NetworkPolicy, Cidr } from '../../src/domain/policy/model.js';

const cidr = (text: string): Cidr => {
  const c = parseCidr(text);
  if (!c) throw new Error(`bad CIDR ${text}`);
  return c;
};

/** Round 0 is container i's first id, `i` in hex padded to 64 digits; later rounds put the round in the first 8. */
const containerId = (i: number, round: number): string => `${round.toString(16).padStart(8, '0')}${i.toString(16).padStart(56, '0')}`;

/**
 * Facts and decision of container `i` of a synthetic host, shaped like Docker 20.10's: every
 * published port twice (0.0.0.0 and ::), one IPv4 address, 1 or 2 published tcp ports (every third
 * container has 2) on distinct host ports (≤ 30,001 for 10,000 containers), every tenth bound to a
 * specific host address; allowances rotate between `any`, one /24, and a /16 plus a /32.
 */
export function syntheticInput(i: number, round = 0): [ContainerFacts, Decision] {
  const id = containerId(i, round);
  const hostIp = i % 10 === 0 ? '10.255.0.1' : '0.0.0.0';
  const ports: PublishedPort[] = [];
  const count = i % 3 === 0 ? 2 : 1;
  for (let k = 0; k < count; k++) {
    const hostPort = 10_000 + 2 * i + k;
    const containerPort = k === 0 ? 80 : 443;
    ports.push({ proto: 'tcp', hostIp, hostPort, containerPort });
    ports.push({ proto: 'tcp', hostIp: hostIp === '0.0.0.0' ? '::' : hostIp, hostPort, containerPort });
  }
  const allow: PortVerdict['allow'] =
    i % 3 === 0 ? 'any'
      : i % 3 === 1 ? [cidr(`172.${16 + (i % 16)}.${(i >> 4) & 255}.0/24`)]
        : [cidr(`10.${(i >> 8) & 255}.0.0/16`), cidr(`192.168.${i & 255}.7/32`)];
  const facts = makeFacts({
    id,
    name: `c${i}`,
    ports,
    networks: [{ name: 'bridge', networkId: 'n1', ipv4: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, ipv6: '', mac: '02:42:00:00:00:00' }],
  });
  const verdicts = { containerId: id, ports: ports.map((port) => ({ port, rule: 'bench', allow, narrowedByLabel: false, labelError: null })) };
  return [facts, decisionOf(facts, { ...verdicts, firewall: { elements: planContainer(facts, verdicts), error: null } })];
}

/** Container `i` on the bridge: MAC from i, pid 100,000 + i, its bridge port `vbI` (the veth lookup handed in). */
export function bridgeInput(i: number, round = 0): ContainerFacts {
  const mac = `02:42:${[i >> 24, i >> 16, i >> 8, i].map((b) => (b & 255).toString(16).padStart(2, '0')).join(':')}`;
  const f = makeFacts({ id: containerId(i, round), networks: [{ name: 'bridge', networkId: 'n1', ipv4: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`, ipv6: '', mac }] });
  return { ...f, state: { ...f.state, pid: 100_000 + i } };
}

/** What evaluate decides for the bridge of a `bridgeInput` container. */
export function bridgeDecision(facts: ContainerFacts, network: NetworkPolicy): Decision {
  const veths = new Map([[facts.networks[0]!.mac, `vb${facts.state.pid! - 100_000}`]]);
  return decisionOf(facts, { bridge: { ports: planPorts(facts, network, veths) } });
}
