import t from 'tap';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { dockwarden } from '../helpers/cli.js';
import { CLI } from '../helpers/daemon.js';
import { DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';

const exec = promisify(execFile);
const ENV = { DOCKWARDEN_POLICY: resolve('config/policy.yaml'), DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET, DOCKWARDEN_STATE_DIR: '/var/lib/dw-test/dockwarden' };
const ESC = '\u001b';

/** Runs the CLI with its stdout on a real pseudo-terminal (util-linux `script`); the arguments are this file's constants. */
async function onTerminal(args: string[], env: Record<string, string> = {}): Promise<string> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, CLI, ...args].map(quote).join(' ');
  const { stdout } = await exec('script', ['-qec', command, '/dev/null'], { env: { PATH: process.env.PATH, TERM: 'xterm', ...ENV, ...env }, timeout: 60_000 }).catch((e: { stdout: string }) => e);
  return stdout.replace(/\r\n/g, '\n');
}

t.before(removeTestContainers);
t.teardown(removeTestContainers);

t.test('check and status: colour on a terminal, none with NO_COLOR, in a pipe or with --json', async (t) => {
  await runContainer({ hostConfig: { CapAdd: ['SYS_ADMIN'] } });

  const tty = await onTerminal(['check']);
  t.match(tty, /CAP_SYS_ADMIN|SYS_ADMIN/, 'the forbidden capability is reported');
  t.match(tty, `${ESC}[1mCONTAINER`, 'on a terminal the header is bold');
  t.match(tty, new RegExp(`${ESC}\\[31m\\d+ violations?`), 'and the count red');
  t.match(await onTerminal(['status']), `${ESC}[`, 'status is coloured on a terminal too');

  for (const noColour of ['1', 'false']) {
    const text = await onTerminal(['check'], { NO_COLOR: noColour });
    t.match(text, /SYS_ADMIN/);
    t.notMatch(text, ESC, `NO_COLOR=${noColour}: no escape on the terminal`);
    t.notMatch(await onTerminal(['status'], { NO_COLOR: noColour }), ESC);
  }

  const piped = await dockwarden(['check'], ENV);
  t.equal(piped.code, 1);
  t.match(piped.stdout, /SYS_ADMIN/);
  t.notMatch(piped.stdout, ESC, 'into a pipe: no colour');
  t.notMatch((await dockwarden(['status'], ENV)).stdout, ESC);

  const json = await onTerminal(['check', '--json']);
  t.notMatch(json, ESC, '--json on a terminal: no colour');
  const report = JSON.parse(json) as { findings: Array<{ check: string }> };
  t.ok(report.findings.some((f) => f.check === 'capabilities'), 'and the same JSON shape');
  t.same(Object.keys(report), ['policy', 'containers', 'privilegedExecs', 'findings']);
  t.notMatch(await onTerminal(['status', '--json']), ESC);
});
