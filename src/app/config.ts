import convict from 'convict';
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parseMetricsListen } from '../adapters/metrics-server.js';
import { ALERT_SEVERITIES, type AlertSeverity } from '../domain/alerts/alert.js';
import { SYSLOG_FACILITIES, type SyslogFacility } from '../domain/alerts/syslog-format.js';
import { parseSyslogTarget } from '../domain/alerts/syslog-target.js';
import { quote } from '../domain/quote.js';
import { decodeYamlBytes, parseYamlSource, reportedErrors, type SourceLocation, type YamlSource } from '../domain/yaml-source.js';
import { isInterfaceName } from '../domain/net/interface-name.js';
import { parseWebhooks, type WebhookConfig, type WebhookProblem } from './webhook-config.js';
export type { WebhookConfig } from './webhook-config.js';

/** The daemon's own settings (not the policy): where things are, how loud to be. */
export interface Config {
  readonly docker: { readonly socket: string; readonly timeoutMs: number };
  readonly policy: { readonly file: string };
  readonly firewall: { readonly backend: 'auto' | 'nftables' | 'iptables'; readonly driftCheckSeconds: number; readonly otherBridges: readonly string[] };
  readonly state: { readonly dir: string };
  readonly log: { readonly level: LogLevel };
  readonly reconcile: { readonly intervalSeconds: number };
  /** `off`, `unix:/path` or `tcp://host:port`, validated (`parseMetricsListen` reads it). */
  readonly metrics: { readonly listen: string };
  readonly alerts: AlertsConfig;
  readonly selinux: { readonly enabled: SelinuxSetting };
  readonly gate: GateConfig;
}

/** The authorization gate (Docker's authz plugin protocol): off unless enabled. */
export interface GateConfig {
  readonly enabled: boolean;
  /** Where it listens when systemd does not hand it the socket; dockerd finds `<name>.sock` in /run/docker/plugins. */
  readonly socket: string;
  /** Every answer within this; later is a refusal. */
  readonly timeoutMs: number;
  /** Endpoints refused unless listed: managed plugins, swarm services. */
  readonly allow: readonly GateAllowance[];
}

export const GATE_ALLOWANCES = ['plugins', 'services', 'builds'] as const;
export type GateAllowance = (typeof GATE_ALLOWANCES)[number];

export interface AlertsConfig {
  /** `target` empty = no syslog sink. */
  readonly syslog: { readonly target: string; readonly facility: SyslogFacility; readonly appName: string; readonly minSeverity: AlertSeverity; readonly timeoutMs: number };
  readonly webhooks: readonly WebhookConfig[];
  readonly dedupeWindowSeconds: number;
  readonly queueLimit: number;
}

/** `auto`: relabel only where the host has SELinux on; `true`: always (tests, hosts detection gets wrong); `false`: never. */
export type SelinuxSetting = 'auto' | boolean;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_CONFIG_FILE = '/etc/dockwarden/config.yaml';
const MAX_MESSAGE = 400;

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
  name: 'metrics-listen',
  validate(value: unknown) {
    if (typeof value !== 'string' || parseMetricsListen(value) === undefined) throw new Error('must be off, unix:/absolute/path or tcp://host:port');
  },
});

convict.addFormat({
  name: 'syslog-target',
  validate(value: unknown) {
    if (value === '') return;
    const target = parseSyslogTarget(String(value));
    if ('error' in target) throw new Error(target.error);
  },
});

/** RFC 5424 APP-NAME: 1 to 48 printable ASCII characters. */
convict.addFormat({
  name: 'app-name',
  validate(value: unknown) {
    if (typeof value !== 'string' || !/^[\x21-\x7e]{1,48}$/.test(value)) throw new Error('must be 1 to 48 printable ASCII characters, no spaces');
  },
});

/** convict validates no list entries: the list passes it as it is and `parseWebhooks` (its own schema) judges every entry. */
convict.addFormat({ name: 'webhook-list', validate() {}, coerce: (value: unknown) => value });

/** Linux interface names (as `ip link` takes them), so none can reach a ruleset unchecked. */
convict.addFormat({
  name: 'interface-list',
  validate(value: unknown) {
    if (!Array.isArray(value)) throw new Error('must be a list of interface names');
    const bad = value.filter((name) => !isInterfaceName(name));
    if (bad.length > 0) throw new Error(`not interface names: ${bad.map((name) => JSON.stringify(name)).join(', ')}`);
  },
  coerce: (value: unknown) => value,
});

convict.addFormat({
  name: 'auto-or-boolean',
  validate(value: unknown) {
    if (value !== 'auto' && typeof value !== 'boolean') throw new Error('must be auto, true or false');
  },
  // Environment variables are strings.
  coerce: (value: string) => (value === 'true' ? true : value === 'false' ? false : value),
});

convict.addFormat({
  name: 'gate-allow',
  validate(value: unknown) {
    if (!Array.isArray(value) || value.some((v) => !(GATE_ALLOWANCES as readonly unknown[]).includes(v))) {
      throw new Error(`must be a list of ${GATE_ALLOWANCES.join(', ')}`);
    }
  },
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
    otherBridges: { doc: "The host's own bridges, not Docker's (libvirt, LXC, a bridged LAN): left alone by the firewall, which otherwise covers every bridge.", format: 'interface-list', default: [] as string[] },
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
  metrics: {
    listen: {
      doc: 'Prometheus metrics: off, unix:/path (default; no TCP port is opened unless asked for) or tcp://host:port.',
      format: 'metrics-listen',
      default: 'unix:/run/dockwarden/metrics.sock',
      env: 'DOCKWARDEN_METRICS_LISTEN',
    },
  },
  alerts: {
    syslog: {
      target: { doc: 'udp://HOST:PORT, tcp://HOST:PORT or unix:/dev/log; empty = no syslog.', format: 'syslog-target', default: '' },
      facility: { doc: 'Syslog facility.', format: [...SYSLOG_FACILITIES], default: 'daemon' },
      appName: { doc: 'RFC 5424 APP-NAME (the journald identifier on the local socket).', format: 'app-name', default: 'dockwarden' },
      minSeverity: { doc: 'Alerts below this severity are not sent to syslog.', format: [...ALERT_SEVERITIES], default: 'info' },
      timeoutMs: { doc: 'TCP connect timeout.', format: 'positive-int', default: 5_000 },
    },
    webhooks: { doc: 'Webhook sinks: url, secret or secretFile, format, minSeverity, timeoutMs.', format: 'webhook-list', default: [] as unknown[], sensitive: true },
    dedupeWindowSeconds: { doc: 'Repeats of one check on one container within this window are folded; 0 = off.', format: 'nat', default: 300 },
    queueLimit: { doc: 'Undelivered alerts kept on disk per sink; beyond it the oldest are dropped (and that is alerted).', format: 'positive-int', default: 10_000 },
  },
  selinux: {
    enabled: { doc: 'auto = relabel only where SELinux is on; true = always; false = never.', format: 'auto-or-boolean', default: 'auto' as SelinuxSetting, env: 'DOCKWARDEN_SELINUX_ENABLED' },
  },
  gate: {
    enabled: { doc: 'Serve the Docker authorization plugin protocol: forbidden containers are refused before they exist.', format: Boolean, default: false, env: 'DOCKWARDEN_GATE_ENABLED' },
    socket: { doc: 'The plugin socket when systemd does not pass one (dockwarden-gate.socket).', format: 'absolute-path', default: '/run/docker/plugins/dockwarden.sock', env: 'DOCKWARDEN_GATE_SOCKET' },
    timeoutMs: { doc: 'Every answer within this; a later one is a refusal.', format: 'positive-int', default: 5_000 },
    allow: { doc: 'Endpoints refused unless listed: plugins (managed plugins), services (swarm services), builds (image builds).', format: 'gate-allow', default: [] as GateAllowance[] },
  },
};

export interface ConfigError extends SourceLocation {
  readonly message: string;
}

export class ConfigInvalid extends Error {
  readonly errors: readonly ConfigError[];
  constructor(errors: readonly ConfigError[]) {
    const reported = reportedErrors(errors, (last, message) => ({ ...last, message }));
    super(reported.map(formatConfigError).join('\n'));
    this.errors = reported;
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
  let bytes: Buffer | null;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    if (file === undefined && (error as NodeJS.ErrnoException).code === 'ENOENT') bytes = null;
    else throw new ConfigInvalid([{ file: path, line: 0, column: 0, message: `cannot read: ${(error as Error).message}` }]);
  }
  let source: YamlSource | null = null;
  if (bytes !== null) {
    const decoded = decodeYamlBytes(bytes, path, 'config');
    if ('error' in decoded) throw new ConfigInvalid([decoded.error]);
    source = parseYamlSource(decoded.text, path);
    if (source.errors.length > 0) throw new ConfigInvalid(source.errors);
  }
  const { shape, errors } = source === null ? { shape: {}, errors: [] } : knownShape(source);

  const config = convict(schema, { env });
  try {
    config.load(shape);
    config.validate({ allowed: 'strict' });
  } catch (error) {
    errors.push(
      ...String((error as Error).message)
        .split('\n')
        .map((line) => locateConvictMessage(line, path, source?.locate, env)),
    );
  }
  const webhooks = parseWebhooks(config.get('alerts.webhooks'));
  if ('problems' in webhooks) errors.push(...webhooks.problems.map((p) => locateWebhookProblem(p, path, source?.locate)));
  if (errors.length > 0) throw new ConfigInvalid(errors);
  const properties = config.getProperties() as Config;
  return { ...properties, alerts: { ...properties.alerts, webhooks: 'webhooks' in webhooks ? webhooks.webhooks : [] } };
}

type SchemaNode = Readonly<Record<string, unknown>>;
const isSetting = (node: SchemaNode): boolean => 'doc' in node;
const isMapping = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * The strictness in front of convict: convict takes a dotted key (`"log.level": debug`) as nothing and
 * walks `__proto__` and `constructor` into its own objects. Every key of the document is checked against
 * the schema here, and convict is given only the settings it declares, sections as mappings.
 */
function knownShape(source: YamlSource): { shape: Record<string, unknown>; errors: ConfigError[] } {
  const errors: ConfigError[] = [];
  const walk = (data: unknown, node: SchemaNode, path: string[]): Record<string, unknown> => {
    if (data === null && path.length > 0) return {}; // `alerts:` with everything under it commented out
    if (!isMapping(data)) {
      errors.push({ ...source.locate(path, 'value'), message: `${path.length > 0 ? `${settingName(path)}: ` : ''}must be a mapping of settings: ${Object.keys(node).join(', ')}` });
      return {};
    }
    const shape: Record<string, unknown> = {};
    for (const key of Object.keys(data)) {
      const child = Object.hasOwn(node, key) ? (node[key] as SchemaNode) : undefined;
      if (child === undefined) errors.push({ ...source.locate([...path, key], 'key'), message: `${settingName([...path, key])}: unknown setting; known settings: ${knownSettings().join(', ')}` });
      else if (!isSetting(child)) shape[key] = walk(data[key], child, [...path, key]);
      // convict would read a mapping here as settings below this one.
      else if (isMapping(data[key])) errors.push({ ...source.locate([...path, key], 'value'), message: `${settingName([...path, key])}: must be a single value, not a mapping` });
      else shape[key] = data[key];
    }
    return shape;
  };
  return { shape: source.value === null ? {} : walk(source.value, schema, []), errors };
}

/** `log.level`; a key that is not a plain word is quoted, so `"log.level"` cannot pass for the setting it looks like. */
function settingName(path: readonly string[]): string {
  return path.map((key) => (/^\w{1,64}$/.test(key) ? key : quote(key))).join('.');
}

type Locate = (path: readonly (string | number)[], at: 'key' | 'value') => SourceLocation;

/** `alerts.webhooks: [1].url: …` at that entry's key or value (the file's start when there is no file). */
function locateWebhookProblem(problem: WebhookProblem, file: string, locate: Locate | undefined): ConfigError {
  const entry = problem.index < 0 ? [] : [problem.index, ...(problem.key === null ? [] : [problem.key])];
  const where = locate ? locate(['alerts', 'webhooks', ...entry], problem.at) : { file, line: 0, column: 0 };
  const name = problem.index < 0 ? '' : `[${problem.index}]${problem.key === null ? '' : `.${problem.key}`}`;
  return { ...where, message: `alerts.webhooks: ${name}${name ? ': ' : ''}${problem.message}` };
}

/**
 * convict reports each bad value as one line starting with the setting's full name (`a.b: what is
 * wrong`): the setting is the longest known name the line starts with. (Unknown keys never reach
 * convict: `knownShape` reports them.)
 */
function locateConvictMessage(line: string, file: string, locate: Locate | undefined, env: NodeJS.ProcessEnv): ConfigError {
  const setting = knownSettings().filter((name) => line.startsWith(`${name}: `)).sort((a, b) => b.length - a.length)[0] ?? '';
  const path = setting.split('.');
  const envName = envVariableOf(path);
  const fromEnv = envName !== undefined && env[envName] !== undefined;
  const where = locate && !fromEnv && setting !== '' ? locate(path, 'value') : { file, line: 0, column: 0 };
  return { ...where, message: `${shortened(line)}${fromEnv ? ` (from environment variable ${envName})` : ''}` };
}

/** convict quotes a bad value whole; a message shows its start. */
function shortened(line: string): string {
  return line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE)}…` : line;
}

function envVariableOf(path: readonly string[]): string | undefined {
  let node: unknown = schema;
  for (const key of path) node = (node as Record<string, unknown> | undefined)?.[key];
  return (node as { env?: string } | undefined)?.env;
}

function knownSettings(): string[] {
  const settings = (node: SchemaNode, prefix: string): string[] =>
    Object.entries(node).flatMap(([key, child]) => (isSetting(child as SchemaNode) ? [`${prefix}${key}`] : settings(child as SchemaNode, `${prefix}${key}.`)));
  return settings(schema, '');
}
