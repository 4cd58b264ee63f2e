import type { Capability } from '../capabilities.js';
import type { Violation } from '../decision.js';
import { DOCKER_DEFAULT_DEVICE_RULES, grantedBy, parseDeviceCgroupRule, type DeviceCgroupRule } from '../device-rules.js';
import type { ContainerFacts, MountFacts } from '../facts.js';
import { contains, exposes } from '../host-path.js';
import type { CheckId, CheckSettings, ContainersPolicy, HostNamespace, ResourceKind, Severity } from '../policy/model.js';
import { defaultProfileAllows } from '../seccomp-profile.js';
import { selectorMatches } from '../selector.js';
import { oneLower } from '../severity.js';
import { unmaskedPaths } from '../system-paths.js';
import { judgeCisItems } from './cis-runtime.js';

/**
 * The runtime checks (`containers` in the policy; README "Runtime checks"): pure judgements of the container's
 * effective configuration. Message texts are built only from values the policy or dockwarden itself
 * names (capability and namespace names, policy paths); what the container supplies (mount sources,
 * device paths, exec commands) goes into `details`, never into the sentence.
 */
export function runtimeViolations(containers: ContainersPolicy, facts: ContainerFacts): Violation[] {
  const excused = new Set(containers.exceptions.filter((e) => selectorMatches(e.match, facts)).flatMap((e) => e.allow));
  const violations: Violation[] = [];
  const judge: Judge = (id, settings, check) => {
    if (settings === undefined || excused.has(id)) return;
    const finding = check(settings, facts);
    if (finding) violations.push({ check: id, severity: settings.severity, action: settings.action, ...finding });
  };
  judge('capabilities', containers.capabilities, forbiddenCapabilities);
  judge('privileged', containers.privileged, privileged);
  judge('host-namespaces', containers.hostNamespaces, hostNamespaces);
  judge('docker-socket', containers.dockerSocket, (s, f) => mountsOf(f, s.paths, [], true, 'mounts the container engine socket'));
  // The engine socket itself is the docker-socket check's to judge (or excuse): one finding, not two.
  const socketPaths = containers.dockerSocket?.paths ?? [];
  judge('sensitive-mounts', containers.sensitiveMounts, (s, f) =>
    mountsOf({ ...f, mounts: f.mounts.filter((m) => !isSocketMount(m, socketPaths)) }, s.paths, s.allowed, !s.readOnlyAllowed, 'mounts sensitive host paths'),
  );
  judge('devices', containers.devices, devices);
  judge('privileged-exec', containers.privilegedExec, privilegedExec);
  judge('no-new-privileges', containers.noNewPrivileges, (_, f) =>
    f.security.noNewPrivileges ? null : { message: 'may gain privileges through setuid binaries: no-new-privileges is not set', details: {} },
  );
  judge('seccomp-unconfined', containers.seccompUnconfined, seccompUnconfined);
  judge('apparmor-unconfined', containers.apparmorUnconfined, (_, f) =>
    f.security.apparmor === 'unconfined' ? { message: 'runs without AppArmor confinement', details: { apparmor: f.security.apparmor } } : null,
  );
  judge('resource-limits', containers.resourceLimits, resourceLimits);
  judge('root-user', containers.rootUser, rootUser);
  judge('unmasked-paths', containers.unmaskedPaths, unmasked);
  judgeCisItems(containers, judge);
  return violations;
}

/** Runs one check when it is on and the container is not excused from it. */
export type Judge = <S extends CheckSettings>(id: CheckId, settings: S | undefined, check: (settings: S, facts: ContainerFacts) => Finding | null) => void;

/** What one check found: a sentence for a human and the facts behind it; a severity only where the check sets its own. */
export interface Finding {
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
  readonly severity?: Severity;
}

const bare = (cap: Capability) => cap.slice('CAP_'.length);

/** Processes named in a finding's details at most (a container chooses how many it runs). */
const MAX_PROCESSES_IN_DETAILS = 16;

/**
 * Judged on what the configuration grants and on what any of its processes holds (CapEff): either
 * is enough. The processes matter beyond init: a privileged exec's background child keeps every
 * capability after the exec has ended. Granted but held by no process (a non-root user: CapEff
 * empty) is only a capability a setuid or file-capability binary could raise: said so, one severity
 * lower. When the init process cannot be read, the configuration alone decides, at full severity.
 */
function forbiddenCapabilities({ forbidden, severity }: { readonly forbidden: readonly Capability[]; readonly severity: Severity }, facts: ContainerFacts): Finding | null {
  const { configured, effective } = facts.capabilities;
  const inConfig = forbidden.filter((c) => configured.includes(c));
  const inEffect = effective === null ? [] : forbidden.filter((c) => effective.includes(c));
  const holders = facts.processes.map((p) => ({ process: p, held: forbidden.filter((c) => p.effective.includes(c)) })).filter((h) => h.held.length > 0);
  const held = forbidden.filter((c) => inConfig.includes(c) || inEffect.includes(c) || holders.some((h) => h.held.includes(c)));
  if (held.length === 0) return null;
  const boundingOnly = effective !== null && inEffect.length === 0 && holders.length === 0;
  return {
    message: boundingOnly
      ? `may gain forbidden capabilities: ${held.map(bare).join(', ')} (in its bounding set; no process holds them)`
      : `holds forbidden capabilities: ${held.map(bare).join(', ')}`,
    ...(boundingOnly && { severity: oneLower(severity) }),
    details: {
      capabilities: held,
      configured: inConfig,
      // null: the process could not be read (not running, or gone before /proc was read)
      effective: effective === null ? null : inEffect,
      ...processDetails(holders.map(({ process, held }) => ({ pid: process.pid, comm: process.comm, capabilities: held }))),
      ...(boundingOnly && { boundingOnly }),
    },
  };
}

/** The first processes of a list, and how many there are when not all are shown. */
function processDetails<T>(processes: readonly T[]): { processes?: readonly T[]; processCount?: number } {
  if (processes.length === 0) return {};
  return { processes: processes.slice(0, MAX_PROCESSES_IN_DETAILS), ...(processes.length > MAX_PROCESSES_IN_DETAILS && { processCount: processes.length }) };
}

function privileged(_: CheckSettings, facts: ContainerFacts): Finding | null {
  return facts.privileged ? { message: 'runs privileged: every capability and host device, no seccomp or LSM confinement', details: {} } : null;
}

/** Directly (`--pid host`) or by joining a container that is in the host's namespace, excused or not. */
function hostNamespaces({ namespaces }: { readonly namespaces: readonly HostNamespace[] }, facts: ContainerFacts): Finding | null {
  const shared = namespaces.filter((ns) => facts.hostNamespaces[ns]);
  if (shared.length === 0) return null;
  const joined = facts.joinedNamespaces.filter((j) => j.host !== false && (shared as readonly string[]).includes(j.namespace));
  return {
    message: `shares the host's ${shared.join(', ')} namespace${shared.length > 1 ? 's' : ''}`,
    details: { namespaces: shared, ...(joined.length > 0 && { joined }) },
  };
}

/**
 * Mounts (bind or volume) whose host paths (`MountFacts.hostPaths`: what is really mounted, not what
 * was asked for) expose a listed path: are it, hold it or lie below it (`/` only itself). A path at
 * or below an `allowed` one is excused from the listed paths that contain that allowed path. A mount
 * whose host paths could not be found out in time is judged fail-safe: as if it exposed them.
 */
function mountsOf(facts: ContainerFacts, paths: readonly string[], allowed: readonly string[], judgeReadOnly: boolean, sentence: string): Finding | null {
  const hits: Array<{ readonly mount: MountFacts; readonly exposes: string[] }> = [];
  const excused = (path: string, listed: string) => allowed.some((a) => contains(a, path) && contains(listed, a));
  for (const mount of facts.mounts) {
    if ((mount.type !== 'bind' && mount.type !== 'volume') || (!mount.rw && !judgeReadOnly)) continue;
    const shown = [...new Set([mount.source, ...mount.hostPaths])].filter((p) => p !== '');
    const exposed = paths.filter((listed) => shown.some((path) => exposes(path, listed) && !excused(path, listed)));
    if (exposed.length > 0 || mount.unresolved !== null) hits.push({ mount, exposes: exposed });
  }
  if (hits.length === 0) return null;
  const exposed = [...new Set(hits.flatMap((h) => h.exposes))];
  const unresolved = hits.filter((h) => h.mount.unresolved !== null).length;
  const access = hits.some((h) => h.mount.rw) ? 'read-write' : 'read-only';
  const what = [
    ...(exposed.length > 0 ? [exposed.join(', ')] : []),
    ...(unresolved > 0 ? [`${unresolved} mount${unresolved > 1 ? 's' : ''} whose host path could not be resolved in time (judged fail-safe)`] : []),
  ];
  return {
    message: `${sentence}: ${what.join('; ')} (${access})`,
    details: {
      paths: exposed,
      mounts: hits.map(({ mount }) => ({
        source: mount.source,
        realSource: mount.realSource,
        hostPaths: mount.hostPaths,
        destination: mount.destination,
        rw: mount.rw,
        ...(mount.unresolved !== null && { unresolved: mount.unresolved }),
      })),
    },
  };
}

/** A mount of the engine socket file itself (a directory holding it shows more than the socket). */
function isSocketMount(mount: MountFacts, socketPaths: readonly string[]): boolean {
  const shown = [mount.source, ...mount.hostPaths].filter((p) => p !== '');
  return mount.unresolved === null && shown.some((p) => socketPaths.includes(p)) && shown.every((p) => socketPaths.includes(p) || p === mount.source);
}

/**
 * Host devices passed in, and device cgroup rules granting more than Docker's defaults and the
 * admin's `allowed-cgroup-rules` together (`b 8:* rwm` with the default CAP_MKNOD is the raw disk).
 * A rule dockerd would not have taken is judged as granting everything.
 */
function devices(
  { allowed, allowedCgroupRules }: { readonly allowed: readonly string[]; readonly allowedCgroupRules: readonly DeviceCgroupRule[] },
  facts: ContainerFacts,
): Finding | null {
  const passed = facts.devices.filter((d) => !allowed.includes(d.pathOnHost));
  const granted = [...DOCKER_DEFAULT_DEVICE_RULES, ...allowedCgroupRules];
  const rules = facts.deviceCgroupRules.filter((text) => {
    const rule = parseDeviceCgroupRule(text);
    return rule === undefined || !grantedBy(rule, granted);
  });
  if (passed.length === 0 && rules.length === 0) return null;
  const plural = (n: number, what: string) => `${n} ${what}${n > 1 ? 's' : ''}`;
  const given = [...(passed.length > 0 ? [plural(passed.length, 'host device')] : []), ...(rules.length > 0 ? [plural(rules.length, 'device cgroup rule')] : [])];
  return {
    message: `is given ${given.join(' and ')} not on the allowed list`,
    details: {
      devices: passed.map((d) => ({ pathOnHost: d.pathOnHost, pathInContainer: d.pathInContainer, permissions: d.permissions })),
      ...(rules.length > 0 && { cgroupRules: rules }),
    },
  };
}

/**
 * No filter at all, or a custom profile that lets through a syscall that matters for breaking out,
 * which Docker's default profile would refuse this container (given its capabilities). A profile that
 * cannot be read is judged unconfined.
 */
function seccompUnconfined(_: CheckSettings, facts: ContainerFacts): Finding | null {
  const { seccomp, seccompProfile: profile } = facts.security;
  if (seccomp === 'unconfined') return { message: 'runs without a seccomp filter', details: { seccomp } };
  if (profile === null) return null;
  if (!profile.readable) return { message: 'runs with a seccomp profile dockwarden cannot read: judged unconfined', details: { seccomp, reason: profile.reason } };
  const allows = profile.allows.filter((syscall) => !defaultProfileAllows(syscall, facts.capabilities.configured));
  if (allows.length === 0) return null;
  return {
    message: `runs with a seccomp profile that allows what Docker's default profile refuses: ${allows.join(', ')}`,
    details: { seccomp, defaultAction: profile.defaultAction, allows },
  };
}

function unmasked(_: CheckSettings, facts: ContainerFacts): Finding | null {
  const open = unmaskedPaths(facts.systemPaths);
  const count = open.masked.length + open.readOnly.length;
  if (count === 0) return null;
  return { message: `exposes ${count} /proc and /sys path${count > 1 ? 's' : ''} Docker masks or makes read-only`, details: open };
}

/**
 * On the init process's uids as the host sees them (real, effective, saved, filesystem: any 0 can
 * become root again), whatever `--user` spelled (`+0`, `00`, a name for uid 0 in the image's passwd);
 * on the `--user` string only when the process cannot be read (a stopped container).
 */
function rootUser(_: CheckSettings, facts: ContainerFacts): Finding | null {
  const uids = facts.processUids;
  const message = facts.user === '' ? 'runs as root: no USER in the image and no --user' : 'runs as root (uid 0)';
  if (uids !== null) {
    if (![uids.real, uids.effective, uids.saved, uids.filesystem].includes(0)) return null;
    return { message, details: { user: facts.user, uid: uids, judgedOn: 'process' } };
  }
  if (!runsAsRoot(facts.user)) return null;
  return {
    message,
    details: { user: facts.user, uid: null, judgedOn: 'configuration: the process could not be read, and a user name the image maps to uid 0 is not seen' },
  };
}

/**
 * A privileged exec, seen three ways: dockerd still lists it (or an exec event named it); a process
 * whose bounding set exceeds what the container was given (a privileged exec's child, or anything
 * entered from the host: nothing started inside can raise its bounding set); or an exec event whose
 * exec id the container's own `execID` label replaced, so the exec cannot be inspected (fail-safe).
 */
function privilegedExec(_: CheckSettings, facts: ContainerFacts): Finding | null {
  const execs = facts.execs.filter((e) => e.privileged);
  const configured = new Set(facts.capabilities.configured);
  const beyond = facts.processes
    .map((p) => ({ pid: p.pid, comm: p.comm, beyondConfiguration: p.bounding.filter((c) => !configured.has(c)) }))
    .filter((p) => p.beyondConfiguration.length > 0);
  if (execs.length === 0 && beyond.length === 0 && !facts.execHiddenByLabel) return null;
  const found = [
    ...(execs.length > 0 ? [`ran docker exec --privileged (${execs.length} process${execs.length > 1 ? 'es' : ''})`] : []),
    ...(beyond.length > 0 ? [`runs ${beyond.length} process${beyond.length > 1 ? 'es' : ''} with capabilities beyond its configuration`] : []),
    ...(facts.execHiddenByLabel ? ['ran an exec whose id its execID label hides from Docker events'] : []),
  ];
  return {
    message: found.join('; '),
    details: {
      ...(execs.length > 0 && { execs: execs.map((e) => ({ id: e.id, command: e.command, user: e.user, running: e.running })) }),
      ...processDetails(beyond),
      ...(facts.execHiddenByLabel && { execHiddenByLabel: true }),
    },
  };
}

const LIMIT_SET: Readonly<Record<ResourceKind, (facts: ContainerFacts) => boolean>> = {
  memory: (f) => f.resources.memory > 0,
  pids: (f) => f.resources.pidsLimit > 0,
  // CIS 5.12 "CPU priority": a share other than the default weight (0 and 1024 both mean the default) counts.
  cpu: (f) => f.resources.cpus > 0 || (f.resources.cpuShares > 0 && f.resources.cpuShares !== 1024),
};

function resourceLimits({ require }: { readonly require: readonly ResourceKind[] }, facts: ContainerFacts): Finding | null {
  const missing = require.filter((kind) => !LIMIT_SET[kind](facts));
  return missing.length === 0 ? null : { message: `has no ${missing.join(', ')} limit`, details: { missing, resources: facts.resources } };
}

/**
 * `Config.User` is `name|uid[:group|gid]`; empty means the image's default, root unless the image says
 * otherwise (dockerd merges that in). runc reads a number with Go's Atoi: a sign is allowed (`+0`, `-0`).
 */
export function runsAsRoot(user: string): boolean {
  const name = user.split(':')[0]!;
  return name === '' || name === 'root' || /^[+-]?0+$/.test(name);
}
