#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigInvalid, loadConfig, type Config } from '../app/config.js';
import { policyJsonSchemaText } from '../domain/policy/json-schema.js';
import { checkCommand } from './check.js';
import { stdoutPainter } from './colour.js';
import { firewallCommand } from './firewall.js';
import { GATE_DEFAULTS, gateCommand } from './gate.js';
import { logFormat } from './pretty-log.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';
import { explainCommand } from './explain.js';
import { validateCommand } from './validate.js';

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
  const config = (): Config => loadConfig(values.config);
  if (command === 'run' && sub === undefined) return runCommand(config(), logFormat(values['log-format'], process.stdout.isTTY === true));
  if (command === 'policy' && sub === 'validate' && rest.length <= 1) {
    // A config named on the command line is checked even when the file to validate is given: a bad one is exit 2, never ignored.
    const configured = values.config !== undefined || rest[0] === undefined ? config() : null;
    return validateCommand(rest[0] ?? configured!.policy.file);
  }
  if (command === 'policy' && sub === 'explain' && rest.length === 1) return explainCommand(config(), rest[0]!, values.json);
  if (command === 'check' && sub === undefined) return checkCommand(config(), values.json, stdoutPainter(), values.cis);
  if (command === 'status' && sub === undefined) return statusCommand(config(), values.json, stdoutPainter());
  if (command === 'firewall' && sub !== undefined && rest.length === 0) return firewallCommand(config(), sub);
  if (command === 'gate' && sub !== undefined && rest.length === 0) {
    return gateCommand(config(), sub, { daemonJson: values['daemon-json'], dockerPidfile: values['docker-pidfile'], pluginName: values['plugin-name'] });
  }
  if (command === 'policy' && sub === 'schema' && rest.length === 0) {
    process.stdout.write(policyJsonSchemaText());
    return 0;
  }
  process.stderr.write(`dockwarden: unknown command: ${positionals.join(' ')}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigInvalid) process.stderr.write(`dockwarden: invalid configuration:\n${error.message}\n`);
    else process.stderr.write(`dockwarden: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 2;
  },
);
