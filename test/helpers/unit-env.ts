/**
 * The daemon's environment as systemd/dockwarden.service sets it (`Environment=`: node's and glibc's
 * memory settings, README "Scale"), for the test harness and the benches, so they run what ships.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const UNIT = resolve(import.meta.dirname, '../../systemd/dockwarden.service');

/** Every `Environment=KEY=VALUE` (or `Environment="KEY=VALUE WITH SPACES"`) line of the unit, one assignment a line. */
export function unitEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [line, value] of readFileSync(UNIT, 'utf8').matchAll(/^Environment=(.*)$/gm)) {
    const assignment = /^(?:"([A-Za-z_][A-Za-z0-9_]*=[^"]*)"|([A-Za-z_][A-Za-z0-9_]*=\S*))$/.exec(value!);
    if (!assignment) throw new Error(`${UNIT}: one KEY=VALUE a line, quoted if it has spaces: ${line}`);
    const text = assignment[1] ?? assignment[2]!;
    env[text.slice(0, text.indexOf('='))] = text.slice(text.indexOf('=') + 1);
  }
  return env;
}
