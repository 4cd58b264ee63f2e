import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Protocol } from '../domain/facts.js';
import type { PlanOptions, PortElement } from '../domain/firewall/plan.js';
import { parseCidr } from '../domain/net/cidr.js';
import { isInterfaceName } from '../domain/net/interface-name.js';

/**
 * What the boot-time baseline needs before dockwarden or Docker run: the Docker bridges last seen,
 * those routed, whether unmatched ports are denied, and the published ports last seen (closed by
 * host port until judged). A stale file can only close too much: a bridge no longer routed, a port
 * denied; a bridge it lacks is still covered by its kind (nftables) or its `br-` name.
 */
export interface FirewallState {
  readonly bridges: readonly string[];
  readonly routed4: readonly string[];
  readonly routed6: readonly string[];
  readonly defaultDeny: boolean;
  readonly ports: readonly PortElement[];
}

const PROTOCOLS: ReadonlySet<unknown> = new Set<Protocol>(['tcp', 'udp', 'sctp']);

const FILE = 'firewall.json';

/** Before dockwarden has ever seen Docker's networks: Docker's default bridge (user networks are `br-*`, always covered). */
const DEFAULT_BRIDGES: readonly string[] = ['docker0'];

export function readFirewallState(stateDir: string): FirewallState | null {
  try {
    const raw = JSON.parse(readFileSync(join(stateDir, FILE), 'utf8')) as Partial<Record<keyof FirewallState, unknown>>;
    if (!Array.isArray(raw.bridges) || typeof raw.defaultDeny !== 'boolean') return null;
    // A name no interface can have (a damaged or edited file) is left out here: the renderer would refuse it, and the baseline with it.
    const names = (list: unknown): string[] => (Array.isArray(list) ? list.filter(isInterfaceName) : []);
    return { bridges: names(raw.bridges), routed4: names(raw.routed4), routed6: names(raw.routed6), defaultDeny: raw.defaultDeny, ports: ports(raw.ports) };
  } catch {
    return null;
  }
}

/** Saved as `[host block, protocol, port]`; anything else in the file is left out. */
function ports(list: unknown): PortElement[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((entry: unknown) => {
    if (!Array.isArray(entry) || entry.length !== 3) return [];
    const [block, proto, port] = entry as unknown[];
    const hostAddr = typeof block === 'string' ? parseCidr(block) : undefined;
    const valid = hostAddr !== undefined && PROTOCOLS.has(proto) && Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535;
    return valid ? [{ hostAddr, proto: proto as Protocol, port: port as number }] : [];
  });
}

/** The options to start from: the saved bridges (or Docker's default), the given default and the admin's other bridges. */
export function startOptions(saved: FirewallState | null, defaultDeny: boolean, otherBridges: readonly string[]): PlanOptions {
  return { defaultDeny, bridges: saved?.bridges ?? DEFAULT_BRIDGES, routed4: saved?.routed4 ?? [], routed6: saved?.routed6 ?? [], otherBridges };
}

/** Written to a temporary file and renamed, so a crash never leaves half a file. */
export function writeFirewallState(stateDir: string, options: PlanOptions, published: readonly PortElement[]): void {
  const state = {
    bridges: options.bridges, routed4: options.routed4 ?? [], routed6: options.routed6 ?? [], defaultDeny: options.defaultDeny,
    ports: published.map((p) => [p.hostAddr.text, p.proto, p.port]),
  };
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `.${FILE}.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  renameSync(tmp, join(stateDir, FILE));
}
