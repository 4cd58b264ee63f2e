import convict from 'convict';
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parseYamlSource, type SourceLocation } from '../domain/yaml-source.js';

/** The daemon's own settings (not the policy): where things are, how loud to be. */
export interface Config {
  readonly docker: { readonly socket: string; readonly timeoutMs: number };
  readonly policy: { readonly file: string };
  readonly firewall: { readonly backend: 'auto' | 'nftables' | 'iptables'; readonly driftCheckSeconds: number };
  readonly state: { readonly dir: string };
  readonly log: { readonly level: LogLevel };
  readonly reconcile: { readonly intervalSeconds: number };
  readonly selinux: { readonly enabled: SelinuxSetting };
}

/** `auto`: relabel only where the host has SELinux on; `true`: always (tests, hosts detection gets wrong); `false`: never. */
export type SelinuxSetting = 'auto' | boolean;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_CONFIG_FILE = '/etc/dockwarden/config.yaml';

convict.addFormat({
  name: 'absolute-path',
  validate(value: unknown) {
    if (typeof value !== 'string' || !isAbsolute(value)) throw new Error('must be an absolute path');
  },
});

convict.addFormat({
  name: 'positive-int',
  validate(value: unknown) {
    if (!Number.isSafeInteger(value) || (value as number) < 1) throw new Error('must be a whole number of at least 1');
  },
  coerce: Number,
});

convict.addFormat({
  name: 'auto-or-boolean',
  validate(value: unknown) {
    if (value !== 'auto' && typeof value !== 'boolean') throw new Error('must be auto, true or false');
  },
  // Environment variables are strings.
  coerce: (value: string) => (value === 'true' ? true : value === 'false' ? false : value),
});

const schema = {
  docker: {
    socket: { doc: 'Docker engine API socket.', format: 'absolute-path', default: '/var/run/docker.sock', env: 'DOCKWARDEN_DOCKER_SOCKET' },
    timeoutMs: { doc: 'Timeout of one Docker API call (the event stream has none).', format: 'nat', default: 10_000 },
  },
  policy: {
    file: { doc: 'The policy YAML.', format: 'absolute-path', default: '/etc/dockwarden/policy.yaml', env: 'DOCKWARDEN_POLICY' },
  },
  firewall: {
    backend: { doc: 'auto = nftables when `nft` exists, else iptables.', format: ['auto', 'nftables', 'iptables'], default: 'auto', env: 'DOCKWARDEN_FIREWALL_BACKEND' },
    driftCheckSeconds: { doc: 'How often the installed ruleset is compared with what was applied (and repaired).', format: 'positive-int', default: 30 },
  },
  state: {
    dir: { doc: 'Where dockwarden keeps its state.', format: 'absolute-path', default: '/var/lib/dockwarden', env: 'DOCKWARDEN_STATE_DIR' },
  },
  log: {
    level: { doc: 'pino log level.', format: [...LOG_LEVELS], default: 'info', env: 'DOCKWARDEN_LOG_LEVEL' },
  },
  reconcile: {
    intervalSeconds: { doc: 'Full reconcile period; events keep state current in between.', format: 'positive-int', default: 300 },
  },
  selinux: {
    enabled: { doc: 'auto = relabel only where SELinux is on; true = always; false = never.', format: 'auto-or-boolean', default: 'auto' as SelinuxSetting, env: 'DOCKWARDEN_SELINUX_ENABLED' },
  },
};

export interface ConfigError extends SourceLocation {
  readonly message: string;
}

export class ConfigInvalid extends Error {
  constructor(readonly errors: readonly ConfigError[]) {
    super(errors.map(formatConfigError).join('\n'));
    this.name = 'ConfigInvalid';
  }
}

export function formatConfigError(e: ConfigError): string {
  return `${e.file}:${e.line}:${e.column}: ${e.message}`;
}

/**
 * Loads `file` (absent and not asked for explicitly → defaults), applies DOCKWARDEN_* environment
 * overrides, and validates strictly: an unknown key is an error, located at its line and column.
 */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const path = file ?? DEFAULT_CONFIG_FILE;
  let text: string | null;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (file === undefined && (error as NodeJS.ErrnoException).code === 'ENOENT') text = null;
    else throw new ConfigInvalid([{ file: path, line: 0, column: 0, message: `cannot read: ${(error as Error).message}` }]);
  }
  const source = text === null ? null : parseYamlSource(text, path);
  if (source && source.errors.length > 0) throw new ConfigInvalid(source.errors);

  const config = convict(schema, { env });
  try {
    if (source) config.load(source.value ?? {});
    config.validate({ allowed: 'strict' });
  } catch (error) {
    throw new ConfigInvalid(
      String((error as Error).message)
        .split('\n')
        .map((line) => locateConvictMessage(line, path, source?.locate, env)),
    );
  }
  return config.getProperties() as Config;
}

/** convict reports `a.b: what is wrong` or `configuration param 'a.b' not declared in the schema`. */
function locateConvictMessage(
  line: string,
  file: string,
  locate: ((path: readonly string[], at: 'key' | 'value') => SourceLocation) | undefined,
  env: NodeJS.ProcessEnv,
): ConfigError {
  const unknown = /^configuration param '([^']+)' not declared in the schema$/.exec(line);
  const keyPath = unknown ? unknown[1]! : (/^([\w.]+): /.exec(line)?.[1] ?? '');
  const path = keyPath.split('.');
  const envName = envVariableOf(path);
  const fromEnv = envName !== undefined && env[envName] !== undefined;
  const where = locate && !fromEnv ? locate(path, unknown ? 'key' : 'value') : { file, line: 0, column: 0 };
  const message = unknown
    ? `${keyPath}: unknown setting; known settings: ${knownSettings().join(', ')}`
    : `${line}${fromEnv ? ` (from environment variable ${envName})` : ''}`;
  return { ...where, message };
}

function envVariableOf(path: readonly string[]): string | undefined {
  let node: unknown = schema;
  for (const key of path) node = (node as Record<string, unknown> | undefined)?.[key];
  return (node as { env?: string } | undefined)?.env;
}

function knownSettings(): string[] {
  return Object.entries(schema).flatMap(([section, keys]) => Object.keys(keys).map((key) => `${section}.${key}`));
}
