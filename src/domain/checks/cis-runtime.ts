import type { ContainerFacts, ExecFacts, PublishedPort } from '../facts.js';
import type { CheckSettings, ContainersPolicy, UlimitName } from '../policy/model.js';
import { runsAsRoot, type Finding, type Judge } from './runtime.js';

/**
 * The runtime checks that follow items of the CIS Docker Benchmark §5 (CIS v1.6.0 as docker-bench-security numbers it, in comments; domain/cis/catalogue.ts)
 * beyond what runtime.ts judges. Pure, and worded like runtime.ts: what the container supplies
 * (paths, names, exec commands, restart policy names) goes into `details`, never into the sentence.
 * Where the engine or the kernel shows more than the configuration (the root mount's `ro`, a
 * mount's peer group, the ports dockerd really bound), that is what is judged.
 */
export function judgeCisItems(containers: ContainersPolicy, judge: Judge): void {
  judge('read-only-root', containers.readOnlyRoot, readOnlyRoot); // 5.13
  judge('restart-policy', containers.restartPolicy, restartPolicy); // 5.15
  judge('wildcard-bind', containers.wildcardBind, wildcardBind); // 5.14
  judge('privileged-ports', containers.privilegedPorts, privilegedPorts); // 5.8
  judge('mount-propagation', containers.mountPropagation, sharedMounts); // 5.20
  judge('cgroup-parent', containers.cgroupParent, cgroupParent); // 5.25
  judge('healthcheck', containers.healthcheck, healthcheck); // 5.27
  judge('ulimits', containers.ulimits, ulimits); // 5.19
  judge('label-disabled', containers.labelDisabled, labelDisabled); // 5.3
  judge('root-exec', containers.rootExec, rootExec); // 5.24
  judge('default-bridge', containers.defaultBridge, defaultBridge); // 5.30
}

/** Entries named in a finding's details at most (execs, ports and mounts are the container's to multiply). */
const MAX_LISTED = 16;

function listed<T>(key: string, items: readonly T[]): Record<string, unknown> {
  return { [key]: items.slice(0, MAX_LISTED), ...(items.length > MAX_LISTED && { [`${key}Count`]: items.length }) };
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

function readOnlyRoot(_: CheckSettings, facts: ContainerFacts): Finding | null {
  const { readOnly, judgedOn } = facts.rootFilesystem;
  return readOnly ? null : { message: 'has a writable root filesystem (no --read-only)', details: { judgedOn } };
}

/**
 * `no` passes, and `on-failure` with at most `max-retries` retries. dockerd's restart manager takes
 * `on-failure` with a count of 0 as "retry forever": that fails, like `always` and `unless-stopped`.
 */
function restartPolicy({ maxRetries }: { readonly maxRetries: number }, facts: ContainerFacts): Finding | null {
  const { name, maximumRetryCount } = facts.restartPolicy;
  if (name === 'no') return null;
  const details = { restartPolicy: name, maximumRetryCount, maxRetries };
  if (name === 'on-failure') {
    if (maximumRetryCount > 0 && maximumRetryCount <= maxRetries) return null;
    const message = maximumRetryCount === 0 ? 'is restarted on failure without limit' : `is restarted on failure more than ${maxRetries} times`;
    return { message, details };
  }
  return { message: 'is restarted whenever it stops, not only on failure and not a bounded number of times', details };
}

/** The ports dockerd bound (`NetworkSettings.Ports`), not the ones asked for: a wildcard is `0.0.0.0`, `::` (or `''` from older engines). */
const WILDCARDS: ReadonlySet<string> = new Set(['0.0.0.0', '::', '']);

function portFinding(ports: readonly PublishedPort[], sentence: (count: number) => string): Finding | null {
  if (ports.length === 0) return null;
  const hostPorts = new Set(ports.map((p) => `${p.proto}/${p.hostPort}`));
  return { message: sentence(hostPorts.size), details: listed('ports', ports) };
}

function wildcardBind(_: CheckSettings, facts: ContainerFacts): Finding | null {
  return portFinding(
    facts.ports.filter((p) => WILDCARDS.has(p.hostIp)),
    (n) => `publishes ${plural(n, 'port')} on every host address rather than one`,
  );
}

function privilegedPorts(_: CheckSettings, facts: ContainerFacts): Finding | null {
  return portFinding(
    facts.ports.filter((p) => p.hostPort < 1024),
    (n) => `publishes ${plural(n, 'port')} below 1024 on the host`,
  );
}

/**
 * The kernel's word while the container runs: its mount table has the mount in a shared peer group
 * (`shared:N`), so mounts made on either side appear on the other. Only when the table cannot be
 * read (a stopped container, a create request at the gate), the configured `shared`/`rshared`.
 */
function sharedMounts(_: CheckSettings, facts: ContainerFacts): Finding | null {
  const shared = facts.mountPropagation
    .map((m) => ({ ...m, judgedOn: m.shared === null ? 'configuration' : 'mount table' }))
    .filter((m) => m.shared ?? (m.configured === 'shared' || m.configured === 'rshared'));
  if (shared.length === 0) return null;
  return {
    message: `has ${plural(shared.length, 'mount')} with shared propagation`,
    details: listed('mounts', shared.map((m) => ({ destination: m.destination, propagation: m.configured, judgedOn: m.judgedOn }))),
  };
}

function cgroupParent({ allowed }: { readonly allowed: readonly string[] }, facts: ContainerFacts): Finding | null {
  const parent = facts.cgroupParent;
  if (parent === '' || allowed.includes(parent)) return null;
  return { message: "runs under a cgroup parent other than the engine's default and not on the allowed list", details: { cgroupParent: parent } };
}

function healthcheck(_: CheckSettings, facts: ContainerFacts): Finding | null {
  const { command, disabled, image } = facts.healthcheck;
  if (command !== null) return null;
  const message = disabled ? "has the image's healthcheck turned off (--no-healthcheck)" : 'has no healthcheck, neither its own nor its image\'s';
  return { message, details: { disabled, imageHealthcheck: image } };
}

function ulimits({ allowed }: { readonly allowed: readonly UlimitName[] }, facts: ContainerFacts): Finding | null {
  const overrides = facts.ulimits.filter((u) => !(allowed as readonly string[]).includes(u.name));
  if (overrides.length === 0) return null;
  return { message: `overrides ${plural(overrides.length, 'ulimit')} of the engine's defaults not on the allowed list`, details: listed('ulimits', overrides) };
}

/** dockerd takes `label=disable`, `label:disable` and a bare `disable`, spelled exactly so (securityOf reads them all). */
function labelDisabled(_: CheckSettings, facts: ContainerFacts): Finding | null {
  if (!facts.security.labelOptions.includes('disable')) return null;
  return { message: 'runs with SELinux labelling disabled (label=disable)', details: { labelOptions: facts.security.labelOptions } };
}

/**
 * An exec as root. While it runs, the host's view of its uids (any 0 of real, effective, saved,
 * filesystem: a name the image's passwd maps to 0 included). Once finished (or at the gate), its
 * `--user` naming uid 0 (`root`, `0`, `0:0`, `+0`), or none in a container whose user is root (an
 * empty `Config.User` included, whatever the init process dropped to later: the exec starts from the
 * configuration, not from init). The container's own healthcheck execs (dockerd's, with its user and
 * command) are not counted: they are no more than the container. An exec whose id an `execID` label
 * hides cannot be told apart: judged fail-safe, as one.
 */
function rootExec(_: CheckSettings, facts: ContainerFacts): Finding | null {
  const asRoot = facts.execs.filter((e) => !isHealthcheckExec(e, facts) && execRunsAsRoot(e, facts.user));
  if (asRoot.length === 0 && !facts.execHiddenByLabel) return null;
  const found = [
    ...(asRoot.length > 0 ? [`ran ${plural(asRoot.length, 'exec')} as root`] : []),
    ...(facts.execHiddenByLabel ? ['ran an exec whose id its execID label hides from Docker events (judged as root)'] : []),
  ];
  return {
    message: found.join('; '),
    details: {
      ...(asRoot.length > 0 &&
        listed('execs', asRoot.map((e) => ({ id: e.id, command: e.command, user: e.user, containerUser: facts.user, running: e.running, uid: e.uids, judgedOn: e.uids ? 'process' : 'configuration' })))),
      ...(facts.execHiddenByLabel && { execHiddenByLabel: true }),
    },
  };
}

function execRunsAsRoot(exec: ExecFacts, containerUser: string): boolean {
  if (exec.uids !== null) return [exec.uids.real, exec.uids.effective, exec.uids.saved, exec.uids.filesystem].includes(0);
  return runsAsRoot(exec.user === '' ? containerUser : exec.user);
}

function isHealthcheckExec(exec: ExecFacts, facts: ContainerFacts): boolean {
  const command = facts.healthcheck.command;
  return command !== null && exec.user === facts.user && !exec.privileged && exec.command.length === command.length && exec.command.every((arg, i) => arg === command[i]);
}

/**
 * Docker's default bridge is the network the engine names `bridge`: dockerd refuses to create
 * another network by a predefined name, so no container author can give theirs that name.
 */
function defaultBridge(_: CheckSettings, facts: ContainerFacts): Finding | null {
  const network = facts.networks.find((n) => n.name === 'bridge');
  return network ? { message: "is attached to Docker's default bridge network", details: { network: network.name, networkId: network.networkId } } : null;
}
