/** The daemon's capabilities as systemd/dockwarden.service grants them, for tests that run it "as installed". */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const UNIT = resolve(import.meta.dirname, '../../systemd/dockwarden.service');

/** A `Key=` list of the shipped unit, as setpriv names capabilities (`net_admin`). */
function unitCaps(key: string): string[] {
  const line = readFileSync(UNIT, 'utf8').match(new RegExp(`^${key}=(.*)$`, 'm'));
  if (!line) throw new Error(`${key} missing from ${UNIT}`);
  return line[1]!.split(/\s+/).filter((c) => c !== '').map((c) => c.toLowerCase().replace(/^cap_/, ''));
}

/** `setpriv` as systemd would start the daemon: the unit's bounding and ambient sets, no new privileges. */
export function asInstalled(): { readonly wrapper: string[]; readonly bounding: string[] } {
  const bounding = unitCaps('CapabilityBoundingSet');
  const ambient = unitCaps('AmbientCapabilities');
  const set = (caps: string[]) => ['-all', ...caps.map((c) => `+${c}`)].join(',');
  return { bounding, wrapper: ['setpriv', `--bounding-set=${set(bounding)}`, `--inh-caps=${set(ambient)}`, `--ambient-caps=${set(ambient)}`, '--no-new-privs', '--'] };
}
