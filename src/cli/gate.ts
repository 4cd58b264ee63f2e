import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import type { Config } from '../app/config.js';
import { addAuthzPlugin, removeAuthzPlugin, type DaemonJsonEdit } from '../domain/gate/daemon-json.js';

export interface GateCommandOptions {
  readonly daemonJson: string;
  /** dockerd's pidfile: it re-reads daemon.json on SIGHUP. */
  readonly dockerPidfile: string;
  /** The plugin name dockerd asks; `dockwarden` unless several gates share a host (tests). */
  readonly pluginName: string;
}

export const GATE_DEFAULTS: GateCommandOptions = { daemonJson: '/etc/docker/daemon.json', dockerPidfile: '/run/docker.pid', pluginName: 'dockwarden' };

const PLUGIN_SOCKET_DIR = '/run/docker/plugins';
const PLUGIN_SPEC_DIR = '/etc/docker/plugins';
const ACTIVATE_TIMEOUT_MS = 5_000;

/**
 * `dockwarden gate install | uninstall`. Install first proves the gate answers: dockerd exits when a
 * reload names an authorization plugin it cannot reach. Uninstall is also the rescue for a broken
 * gate: it needs no Docker API call (which the broken gate would hold), only daemon.json and SIGHUP.
 */
export async function gateCommand(config: Config, action: string, options: GateCommandOptions): Promise<number> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(options.pluginName)) {
    process.stderr.write('dockwarden: --plugin-name must be 1 to 64 letters, digits, ., _ or -, starting with a letter or digit\n');
    return 2;
  }
  const spec = join(PLUGIN_SPEC_DIR, `${options.pluginName}.spec`);
  // dockerd finds `<name>.sock` in its plugin directory by itself; any other socket needs a spec file.
  const needsSpec = config.gate.socket !== join(PLUGIN_SOCKET_DIR, `${options.pluginName}.sock`);
  if (action === 'install') {
    const answer = await activate(config.gate.socket);
    if (answer !== null) {
      process.stderr.write(
        `dockwarden: the gate does not answer on ${config.gate.socket} (${answer}). Serve it first: gate.enabled: true in the config, ` +
          'systemctl enable --now dockwarden-gate.socket, systemctl restart dockwarden. Not installed: dockerd exits when it cannot reach an authorization plugin it is told to use.\n',
      );
      return 2;
    }
    if (needsSpec) writeAtomically(spec, `unix://${config.gate.socket}\n`, 0o644);
    const code = applyEdit(options.daemonJson, (text) => addAuthzPlugin(text, options.pluginName));
    if (code !== 0) return code;
    reloadDockerd(options.dockerPidfile, 'installed: dockerd asks dockwarden before it creates, starts or changes a container');
    return 0;
  }
  if (action === 'uninstall') {
    const code = applyEdit(options.daemonJson, (text) => removeAuthzPlugin(text, options.pluginName));
    if (code !== 0) return code;
    if (needsSpec) rmSync(spec, { force: true });
    reloadDockerd(options.dockerPidfile, 'uninstalled: dockerd no longer asks dockwarden (the daemon still watches and acts after the fact)');
    return 0;
  }
  process.stderr.write(`dockwarden: unknown gate action ${JSON.stringify(action)}; expected install or uninstall\n`);
  return 2;
}

function applyEdit(file: string, edit: (text: string | null) => DaemonJsonEdit): number {
  let text: string | null = null;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      process.stderr.write(`dockwarden: cannot read ${file}: ${(error as Error).message}\n`);
      return 2;
    }
  }
  const result = edit(text);
  if ('error' in result) {
    process.stderr.write(`dockwarden: ${file}: ${result.error}\n`);
    return 2;
  }
  if (result.changed) writeAtomically(file, result.text, text === null ? 0o644 : statSync(file).mode & 0o777);
  process.stdout.write(`dockwarden: ${file} ${result.changed ? 'updated' : 'already as it should be'}\n`);
  return 0;
}

/** A temporary file beside it, renamed over it: dockerd never reads half a file. */
function writeAtomically(file: string, text: string, mode: number): void {
  const tmp = join(dirname(file), `.${process.pid}.dockwarden.tmp`);
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

function reloadDockerd(pidfile: string, done: string): void {
  let pid: number;
  try {
    pid = Number(readFileSync(pidfile, 'utf8').trim());
    if (!Number.isSafeInteger(pid) || pid < 2) throw new Error(`${pidfile} holds no pid`);
    process.kill(pid, 'SIGHUP');
  } catch (error) {
    process.stdout.write(`dockwarden: ${done}, once dockerd re-reads its configuration: could not signal it (${(error as Error).message}); run: systemctl reload docker\n`);
    return;
  }
  process.stdout.write(`dockwarden: ${done}; dockerd (pid ${pid}) told to re-read its configuration\n`);
}

/** null when the gate answers `Plugin.Activate` as an authz plugin; else why not. */
function activate(socketPath: string): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request({ socketPath, method: 'POST', path: '/Plugin.Activate', timeout: ACTIVATE_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString()) as { Implements?: unknown };
          resolve(Array.isArray(body.Implements) && body.Implements.includes('authz') ? null : 'it does not implement authz');
        } catch {
          resolve('it answered something other than a plugin activation');
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${ACTIVATE_TIMEOUT_MS} ms`)));
    req.on('error', (error) => resolve(error.message));
    req.end();
  });
}
