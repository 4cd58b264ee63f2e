/**
 * A host whose `iptables` is the legacy variant, for the compatibility test of the iptables backend:
 * `update-alternatives` switched to `iptables-legacy` (and ip6tables), and a dockerd of the test's own
 * started while it is, so Docker's chains (DOCKER, DOCKER-USER, its NAT) live in the legacy tables.
 * Everything is undone by `restore`, step by step, each step even when an earlier one failed: the
 * alternatives are host-wide and other sessions' dockerd would otherwise write legacy rules too.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import Docker from 'dockerode';
import { TEST_IMAGE, docker as testDocker } from './docker.js';

const RUN_DIR = '/run/dw-legacy';
export const LEGACY_SOCKET = `${RUN_DIR}/docker.sock`;
const DATA_ROOT = '/var/lib/dw-legacy/docker';
/** Its own bridge and block: 10.232.0.0/24, refused when anything routes there already. */
const BRIDGE = 'dwleg0';
const BRIDGE_ADDR = '10.232.0.1/24';
const START_TIMEOUT_MS = 30_000;
const TOOLS = ['iptables', 'ip6tables'] as const;

/** What update-alternatives had selected before, to put back exactly (auto mode or a manual choice). */
interface Selection {
  readonly tool: (typeof TOOLS)[number];
  readonly auto: boolean;
  readonly value: string;
}

export interface LegacyHost {
  readonly docker: Docker;
  /** Undoes everything, in order; throws at the end if any step failed. */
  restore(): Promise<void>;
}

const run = (file: string, ...args: string[]): string => execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function selection(tool: Selection['tool']): Selection {
  const query = run('update-alternatives', '--query', tool);
  return { tool, auto: /^Status: auto$/m.test(query), value: /^Value: (\S+)$/m.exec(query)?.[1] ?? '' };
}

function reselect({ tool, auto, value }: Selection): void {
  if (auto) run('update-alternatives', '--auto', tool);
  else run('update-alternatives', '--set', tool, value);
}

/** `iptables-legacy-save` output as its `*table … COMMIT` sections, by table name. */
function legacyTables(tool: Selection['tool']): Map<string, string> {
  const sections = new Map<string, string>();
  for (const match of run(`${tool}-legacy-save`).matchAll(/^\*(\w+)\n[\s\S]*?^COMMIT$/gm)) sections.set(match[1]!, match[0]);
  return sections;
}

/** Puts every legacy table back as `before` had it; a table that did not exist then is emptied of rules and chains. */
function restoreLegacyTables(tool: Selection['tool'], before: Map<string, string>): void {
  const payload = [...legacyTables(tool).keys()].map((table) => before.get(table) ?? `*${table}\nCOMMIT`).join('\n');
  execFileSync(`${tool}-legacy-restore`, ['-w'], { input: `${payload}\n`, stdio: ['pipe', 'ignore', 'pipe'] });
}

/**
 * Switches the host to iptables-legacy and starts the legacy dockerd with TEST_IMAGE loaded. On any
 * failure on the way, what was done is undone before the error is thrown.
 */
export async function legacyHost(): Promise<LegacyHost> {
  const before = TOOLS.map((tool) => ({ selected: selection(tool), tables: legacyTables(tool) }));
  const undo: Array<[string, () => unknown]> = [];
  const restore = async (): Promise<void> => {
    const failures: string[] = [];
    for (const [step, fn] of undo.reverse()) {
      try {
        await fn();
      } catch (error) {
        failures.push(`${step}: ${(error as Error).message}`);
      }
    }
    undo.length = 0;
    process.off('exit', lastResort);
    if (failures.length > 0) throw new Error(`restoring the host failed:\n${failures.join('\n')}`);
  };
  // Should the test die without its teardown, the alternatives still go back (a synchronous step).
  const lastResort = (): void => before.forEach(({ selected }) => reselect(selected));
  process.on('exit', lastResort);
  try {
    undo.push(['alternatives', lastResort]);
    for (const tool of TOOLS) run('update-alternatives', '--set', tool, `/usr/sbin/${tool}-legacy`);
    if (!run('iptables', '-V').includes('(legacy)')) throw new Error('iptables is not the legacy variant after update-alternatives');
    undo.push(['legacy tables', () => before.forEach(({ selected, tables }) => restoreLegacyTables(selected.tool, tables))]);

    const routed = [...run('ip', '-4', 'route', 'show', 'match', '10.232.0.0/24').split('\n'), ...run('ip', '-4', 'route', 'show', 'root', '10.232.0.0/24').split('\n')]
      .filter((route) => route !== '' && !route.startsWith('default '));
    if (routed.length > 0) throw new Error(`10.232.0.0/24 is routed already: ${routed.join('; ')}`);
    run('ip', 'link', 'add', BRIDGE, 'type', 'bridge');
    undo.push(['bridge', () => run('ip', 'link', 'del', BRIDGE)]);
    run('ip', 'addr', 'add', BRIDGE_ADDR, 'dev', BRIDGE);
    run('ip', 'link', 'set', BRIDGE, 'up');

    mkdirSync(`${RUN_DIR}/exec`, { recursive: true });
    mkdirSync(DATA_ROOT, { recursive: true });
    const log: string[] = [];
    const child = spawn('dockerd', [
      '--host', `unix://${LEGACY_SOCKET}`, '--data-root', DATA_ROOT, '--exec-root', `${RUN_DIR}/exec`, '--pidfile', `${RUN_DIR}/dockerd.pid`,
      '--bridge', BRIDGE, '--containerd-namespace', 'dw-legacy', '--containerd-plugins-namespace', 'dw-legacy-plugins', '--cgroup-parent', 'dw-legacy',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => log.push(chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => log.push(chunk.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const docker = new Docker({ socketPath: LEGACY_SOCKET, timeout: 60_000 });
    undo.push(['dockerd', async () => {
      const left = await docker.listContainers({ all: true }).catch(() => []);
      await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000).unref())]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }]);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await docker.ping().then(() => true, () => false))) {
      if (child.exitCode !== null) throw new Error(`legacy dockerd exited during start-up:\n${log.join('')}`);
      if (Date.now() > deadline) throw new Error(`legacy dockerd did not answer within ${START_TIMEOUT_MS} ms:\n${log.join('')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const left = await docker.listContainers({ all: true });
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    if (!(await docker.getImage(TEST_IMAGE).inspect().then(() => true, () => false))) {
      const loaded = await docker.loadImage(await testDocker.getImage(TEST_IMAGE).get());
      await new Promise((resolve, reject) => docker.modem.followProgress(loaded, (error) => (error ? reject(error) : resolve(null))));
    }
    return { docker, restore };
  } catch (error) {
    await restore().catch((undoError: Error) => ((error as Error).message += `\n${undoError.message}`));
    throw error;
  }
}
