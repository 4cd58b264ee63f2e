import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { unitEnvironment } from './unit-env.js';

export const CLI = resolve(import.meta.dirname, '../../dist/cli/main.js');

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface DaemonProcess {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly policyFile: string;
  readonly metricsSocket: string;
  readonly logs: LogLine[];
  readonly stderr: string[];
  /** Resolves with the first log line (past or future) that matches; rejects after `timeoutMs`. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface DaemonOptions {
  readonly policy: string;
  readonly dockerSocket: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Extra YAML appended to the generated config file. */
  readonly extraConfig?: string;
  /** The CLI to run; default: this checkout's dist/cli/main.js. */
  readonly cli?: string;
  /** `metrics.listen`; default: a unix socket in the daemon's scratch directory (`metricsSocket`). */
  readonly metricsListen?: string;
  /** A state dir that outlives this process (a restart test); default: one inside the scratch dir. */
  readonly stateDir?: string;
  /** A command the daemon runs under, its arguments first (e.g. `setpriv` with the unit's capabilities). */
  readonly wrapper?: readonly string[];
}

/**
 * The daemon's environment, `base` with a test's own variables (`extra`): as in production, plain node with
 * the unit's settings (unitEnvironment), without the test runner's loaders and settings.
 */
export function daemonEnvironment(base: NodeJS.ProcessEnv, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, NOTIFY_SOCKET: '', ...extra };
  for (const key of Object.keys(env)) if (key.startsWith('DOCKWARDEN_') || key.startsWith('TAP') || key === 'NODE_OPTIONS') delete env[key];
  return { ...env, ...unitEnvironment() };
}

/** Runs `dockwarden run` from dist/ as a real child process in a scratch directory. */
export function spawnDaemon(options: DaemonOptions): DaemonProcess {
  const dir = mkdtempSync(join(tmpdir(), 'dw-daemon-'));
  const policyFile = join(dir, 'policy.yaml');
  const configFile = join(dir, 'config.yaml');
  const metricsSocket = join(dir, 'metrics.sock');
  writeFileSync(policyFile, options.policy);
  writeFileSync(
    configFile,
    [
      `docker:\n  socket: ${options.dockerSocket}`,
      `policy:\n  file: ${policyFile}`,
      `state:\n  dir: ${options.stateDir ?? join(dir, 'state')}`,
      'log:\n  level: debug',
      `metrics:\n  listen: ${options.metricsListen ?? `unix:${metricsSocket}`}`,
      options.extraConfig ?? '',
    ].join('\n') + '\n',
  );
  const env = daemonEnvironment(process.env, options.env ?? {});
  const argv = [process.execPath, options.cli ?? CLI, 'run', '--config', configFile];
  const [file, ...args] = [...(options.wrapper ?? []), ...argv] as [string, ...string[]];
  const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  const stderr: string[] = [];
  const waiters: Array<{ match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { msg: `(not JSON) ${text}` };
    }
    logs.push(line);
    for (const w of [...waiters]) {
      if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  createInterface({ input: child.stderr! }).on('line', (text) => stderr.push(text));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => rmSync(dir, { recursive: true, force: true }));

  return {
    child,
    dir,
    policyFile,
    metricsSocket,
    logs,
    stderr,
    exited,
    waitForLog(match, timeoutMs = 30_000) {
      const seen = logs.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no matching log line in ${timeoutMs} ms; last lines:\n${logs.slice(-15).map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${stderr.join('\n')}`));
        }, timeoutMs);
        const waiter = { match, resolve: (line: LogLine) => (clearTimeout(timer), resolve(line)) };
        waiters.push(waiter);
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** The log line judging a container, by id; by default only once it runs (ports are published only then). */
export const judged =
  (id: string, running = true) =>
  (line: LogLine): boolean => {
    const container = line.container as { id?: string; running?: boolean } | undefined;
    return line.msg === 'container judged' && container?.id === id && container.running === running;
  };
