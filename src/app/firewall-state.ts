import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
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
/** Published ports added since `FILE` was written, one `[host block, protocol, port]` a line (see `FirewallStateFile`). */
const JOURNAL = 'firewall.ports.jsonl';
/** Appended ports after which the journal is folded into `FILE` even on a small host. */
const MIN_JOURNAL = 1_024;

/** Before dockwarden has ever seen Docker's networks: Docker's default bridge (user networks are `br-*`, always covered). */
const DEFAULT_BRIDGES: readonly string[] = ['docker0'];

export function readFirewallState(stateDir: string): FirewallState | null {
  try {
    const raw = JSON.parse(readFileSync(join(stateDir, FILE), 'utf8')) as Partial<Record<keyof FirewallState, unknown>>;
    if (!Array.isArray(raw.bridges) || typeof raw.defaultDeny !== 'boolean') return null;
    // A name no interface can have (a damaged or edited file) is left out here: the renderer would refuse it, and the baseline with it.
    const names = (list: unknown): string[] => (Array.isArray(list) ? list.filter(isInterfaceName) : []);
    return { bridges: names(raw.bridges), routed4: names(raw.routed4), routed6: names(raw.routed6), defaultDeny: raw.defaultDeny, ports: [...ports(raw.ports), ...journal(stateDir)] };
  } catch {
    return null;
  }
}

/** The ports appended since the last full write; a line cut short by a crash is left out (its transaction had not begun). */
function journal(stateDir: string): PortElement[] {
  let text: string;
  try {
    text = readFileSync(join(stateDir, JOURNAL), 'utf8');
  } catch {
    return [];
  }
  return ports(text.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as unknown];
    } catch {
      return [];
    }
  }));
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

/** Written to a temporary file and renamed, so a crash never leaves half a file; then the journal, now in it, is emptied. */
export function writeFirewallState(stateDir: string, options: PlanOptions, published: readonly PortElement[]): void {
  const state = {
    bridges: options.bridges, routed4: options.routed4 ?? [], routed6: options.routed6 ?? [], defaultDeny: options.defaultDeny,
    ports: published.map(saved),
  };
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `.${FILE}.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  renameSync(tmp, join(stateDir, FILE));
  // A crash before this line leaves ports in both: the baseline closes them once, as it would anyway.
  writeFileSync(join(stateDir, JOURNAL), '', { mode: 0o600 });
}

const saved = (p: PortElement): [string, Protocol, number] => [p.hostAddr.text, p.proto, p.port];

/** What FirewallEnforcer tells the next boot's baseline (`FirewallStateFile`; tests record it). */
export interface BaselineRecord {
  /** The options changed, or the whole ruleset is replaced: every published port, written now. */
  write(options: PlanOptions, published: readonly PortElement[]): void;
  /** Before the element transaction that publishes `added`; `published` (every port, costs all of them) only if it wants it. */
  publishing(options: PlanOptions, added: readonly PortElement[], published: () => readonly PortElement[]): void;
}

/**
 * Keeps the state file current at a cost per event that does not grow with the number of containers
 * (rewriting every port on each change was the O(containers) part of an event at 10,000). A port about
 * to be published is appended to a journal at once, before the transaction that opens it, so the file
 * never lacks a port the kernel allows: at boot the baseline closes, by host port, every port of the
 * file and of the journal (`readFirewallState` reads both). Ports that go away are not appended: they
 * leave the file at the next full write (a replace, an options change, or the journal growing past the
 * file's size, so the rewrites cost O(1) per appended port on average). Until then the file holds ports
 * no container publishes, and a stale port can only close too much: the baseline drops new connections
 * to it until the start-up reconcile replaces the baseline (README "Published ports").
 */
export class FirewallStateFile implements BaselineRecord {
  /** Ports appended since the last full write, and how many that write held. */
  private appended = 0;
  private written = 0;

  constructor(private readonly stateDir: string) {}

  write(options: PlanOptions, published: readonly PortElement[]): void {
    writeFirewallState(this.stateDir, options, published);
    this.appended = 0;
    this.written = published.length;
  }

  publishing(options: PlanOptions, added: readonly PortElement[], published: () => readonly PortElement[]): void {
    if (added.length === 0) return;
    if (this.appended + added.length > Math.max(MIN_JOURNAL, this.written)) return this.write(options, published());
    mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    appendFileSync(join(this.stateDir, JOURNAL), added.map((p) => `${JSON.stringify(saved(p))}\n`).join(''), { mode: 0o600 });
    this.appended += added.length;
  }
}
