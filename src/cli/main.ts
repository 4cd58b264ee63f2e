#!/usr/bin/env node
import { parseArgs } from 'node:util';
import type { Config } from '../app/config.js';
import { stdoutPainter } from './colour.js';
import { holdDaemonSignals } from './daemon-signals.js';
import { GATE_DEFAULTS } from './gate.js';
import { logFormat } from './pretty-log.js';

const USAGE = `usage: dockwarden <command> [options]

  run                [--config FILE] [--log-format json|pretty]
                                              run the daemon (systemd ExecStart); logs one readable line
                                              per event on a terminal, JSON lines otherwise
  check              [--json] [--cis] [--config FILE]
                                              judge every running container once; exit 0 clean, 1 violations;
                                              --cis: one line per CIS Docker Benchmark item instead
  policy validate    [FILE] [--config FILE]   check a policy file; exit 0 valid, 1 invalid
  policy explain     CONTAINER [--json] [--config FILE]
                                              which rules match a container and what would happen
  policy schema                               print the policy's JSON Schema (for editors)
  status             [--json] [--config FILE] every published port and who may reach it; firewall sync
  firewall show      [--config FILE]          the installed ruleset
  firewall baseline  [--config FILE]          install the fail-closed baseline if none is (boot, before docker)
  firewall remove    [--config FILE]          take dockwarden's ruleset out (ports are then unfiltered)
  gate install       [--config FILE] [--daemon-json FILE] [--docker-pidfile FILE] [--plugin-name NAME]
                                              add the gate to dockerd's authorization plugins (it must answer first)
  gate uninstall     [same options]           take it out again; also the rescue for a gate that is down

Config: --config FILE, else /etc/dockwarden/config.yaml if present, else defaults;
DOCKWARDEN_DOCKER_SOCKET, DOCKWARDEN_POLICY, DOCKWARDEN_STATE_DIR, DOCKWARDEN_LOG_LEVEL and
DOCKWARDEN_FIREWALL_BACKEND override it.
`;

/** Exit codes: 0 ok, 1 the thing checked is bad (invalid policy, violations), 2 usage or runtime error. */
async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
      cis: { type: 'boolean', default: false },
      'log-format': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      'daemon-json': { type: 'string', default: GATE_DEFAULTS.daemonJson },
      'docker-pidfile': { type: 'string', default: GATE_DEFAULTS.dockerPidfile },
      'plugin-name': { type: 'string', default: GATE_DEFAULTS.pluginName },
    },
  });
  const [command, sub, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return values.help || command === 'help' ? 0 : 2;
  }
  // Each command loads its own modules when it runs (the daemon's take about a second on a loaded host).
  const config = async (): Promise<Config> => (await import('../app/config.js')).loadConfig(values.config);
  if (command === 'run' && sub === undefined) {
    // Before the daemon's modules load: a signal meanwhile must not be node's default death.
    const signals = holdDaemonSignals();
    // The policy is read and validated in a worker thread (as reloads are) while this thread loads the
    // config and the daemon's modules: the two overlap on a second core (issue #15, recovery after a
    // SIGKILL). Its worker starts first, before the config names the file: the thread's own start and
    // the validator's load are most of its time.
    const readPolicy = (await import('../app/policy-reader.js')).startPolicyReader();
    const settings = await config();
    const policy = readPolicy(settings.policy.file);
    const { runCommand } = await import('./run.js');
    return runCommand(settings, logFormat(values['log-format'], process.stdout.isTTY === true), signals, policy);
  }
  if (command === 'policy' && sub === 'validate' && rest.length <= 1) {
    // A config named on the command line is checked even when the file to validate is given: a bad one is exit 2, never ignored.
    const configured = values.config !== undefined || rest[0] === undefined ? await config() : null;
    return (await import('./validate.js')).validateCommand(rest[0] ?? configured!.policy.file);
  }
  if (command === 'policy' && sub === 'explain' && rest.length === 1) return (await import('./explain.js')).explainCommand(await config(), rest[0]!, values.json);
  if (command === 'check' && sub === undefined) return (await import('./check.js')).checkCommand(await config(), values.json, stdoutPainter(), values.cis);
  if (command === 'status' && sub === undefined) return (await import('./status.js')).statusCommand(await config(), values.json, stdoutPainter());
  if (command === 'firewall' && sub !== undefined && rest.length === 0) return (await import('./firewall.js')).firewallCommand(await config(), sub);
  if (command === 'gate' && sub !== undefined && rest.length === 0) {
    return (await import('./gate.js')).gateCommand(await config(), sub, { daemonJson: values['daemon-json'], dockerPidfile: values['docker-pidfile'], pluginName: values['plugin-name'] });
  }
  if (command === 'policy' && sub === 'schema' && rest.length === 0) {
    process.stdout.write((await import('../domain/policy/json-schema.js')).policyJsonSchemaText());
    return 0;
  }
  process.stderr.write(`dockwarden: unknown command: ${positionals.join(' ')}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  async (error: unknown) => {
    // Only a command that read its config can fail with ConfigInvalid: the module is loaded by then.
    const { ConfigInvalid } = await import('../app/config.js');
    if (error instanceof ConfigInvalid) process.stderr.write(`dockwarden: invalid configuration:\n${error.message}\n`);
    else process.stderr.write(`dockwarden: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
