import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What the boot-time baseline needs before dockwarden or Docker run: the Docker bridges last seen and
 * whether unmatched ports are denied. Only ever narrows (it drops, it never allows), so a stale file
 * can close a port too many, never open one.
 */
export interface FirewallState {
  readonly bridges: readonly string[];
  readonly defaultDeny: boolean;
}

const FILE = 'firewall.json';

/** Before dockwarden has ever seen Docker's networks: Docker's default bridge (user networks are `br-*`, always covered). */
export const DEFAULT_BRIDGES: readonly string[] = ['docker0'];

export function readFirewallState(stateDir: string): FirewallState | null {
  try {
    const raw = JSON.parse(readFileSync(join(stateDir, FILE), 'utf8')) as Partial<FirewallState>;
    if (!Array.isArray(raw.bridges) || typeof raw.defaultDeny !== 'boolean') return null;
    return { bridges: raw.bridges.filter((b): b is string => typeof b === 'string'), defaultDeny: raw.defaultDeny };
  } catch {
    return null;
  }
}

/** Written to a temporary file and renamed, so a crash never leaves half a file. */
export function writeFirewallState(stateDir: string, state: FirewallState): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `.${FILE}.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  renameSync(tmp, join(stateDir, FILE));
}
