import type { Capability } from '../capabilities.js';
import type { Violation } from '../decision.js';
import type { ContainerFacts, MountFacts } from '../facts.js';
import { contains, exposes } from '../host-path.js';
import type { CheckId, CheckSettings, ContainersPolicy, HostNamespace, ResourceKind } from '../policy/model.js';
import { selectorMatches } from '../selector.js';

/**
 * The runtime checks of DESIGN §4 (`containers` in the policy): pure judgements of the container's
 * effective configuration. Message texts are built only from values the policy or dockwarden itself
 * names (capability and namespace names, policy paths); what the container supplies (mount sources,
 * device paths, exec commands) goes into `details`, never into the sentence.
 */
export function runtimeViolations(containers: ContainersPolicy, facts: ContainerFacts): Violation[] {
  const excused = new Set(containers.exceptions.filter((e) => selectorMatches(e.match, facts)).flatMap((e) => e.allow));
  const violations: Violation[] = [];
  const judge = <S extends CheckSettings>(id: CheckId, settings: S | undefined, check: (settings: S, facts: ContainerFacts) => Finding | null): void => {
    if (settings === undefined || excused.has(id)) return;
    const finding = check(settings, facts);
    if (finding) violations.push({ check: id, severity: settings.severity, action: settings.action, ...finding });
  };
  judge('capabilities', containers.capabilities, forbiddenCapabilities);
  judge('privileged', containers.privileged, privileged);
  judge('host-namespaces', containers.hostNamespaces, hostNamespaces);
  judge('docker-socket', containers.dockerSocket, (s, f) => mountsOf(f, s.paths, [], true, 'mounts the container engine socket'));
  judge('sensitive-mounts', containers.sensitiveMounts, (s, f) => mountsOf(f, s.paths, s.allowed, !s.readOnlyAllowed, 'mounts sensitive host paths'));
  judge('devices', containers.devices, devices);
  judge('privileged-exec', containers.privilegedExec, privilegedExec);
  judge('no-new-privileges', containers.noNewPrivileges, (_, f) =>
    f.security.noNewPrivileges ? null : { message: 'may gain privileges through setuid binaries: no-new-privileges is not set', details: {} },
  );
  judge('seccomp-unconfined', containers.seccompUnconfined, (_, f) =>
    f.security.seccomp === 'unconfined' ? { message: 'runs without a seccomp filter', details: { seccomp: f.security.seccomp } } : null,
  );
  judge('apparmor-unconfined', containers.apparmorUnconfined, (_, f) =>
    f.security.apparmor === 'unconfined' ? { message: 'runs without AppArmor confinement', details: { apparmor: f.security.apparmor } } : null,
  );
  judge('resource-limits', containers.resourceLimits, resourceLimits);
  judge('root-user', containers.rootUser, (_, f) => (runsAsRoot(f.user) ? { message: 'runs as root: no USER in the image and no --user', details: { user: f.user } } : null));
  return violations;
}

/** What one check found: a sentence for a human and the facts behind it. */
interface Finding {
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
}

const bare = (cap: Capability) => cap.slice('CAP_'.length);

/** Judged on what the configuration grants and on what the process holds: either is enough. */
function forbiddenCapabilities({ forbidden }: { readonly forbidden: readonly Capability[] }, facts: ContainerFacts): Finding | null {
  const { configured, effective } = facts.capabilities;
  const inConfig = forbidden.filter((c) => configured.includes(c));
  const inEffect = effective === null ? [] : forbidden.filter((c) => effective.includes(c));
  const held = forbidden.filter((c) => inConfig.includes(c) || inEffect.includes(c));
  if (held.length === 0) return null;
  return {
    message: `holds forbidden capabilities: ${held.map(bare).join(', ')}`,
    details: {
      capabilities: held,
      configured: inConfig,
      // null: the process could not be read (not running, or gone before /proc was read)
      effective: effective === null ? null : inEffect,
    },
  };
}

function privileged(_: CheckSettings, facts: ContainerFacts): Finding | null {
  return facts.privileged ? { message: 'runs privileged: every capability and host device, no seccomp or LSM confinement', details: {} } : null;
}

function hostNamespaces({ namespaces }: { readonly namespaces: readonly HostNamespace[] }, facts: ContainerFacts): Finding | null {
  const shared = namespaces.filter((ns) => facts.hostNamespaces[ns]);
  return shared.length === 0 ? null : { message: `shares the host's ${shared.join(', ')} namespace${shared.length > 1 ? 's' : ''}`, details: { namespaces: shared } };
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

function devices({ allowed }: { readonly allowed: readonly string[] }, facts: ContainerFacts): Finding | null {
  const passed = facts.devices.filter((d) => !allowed.includes(d.pathOnHost));
  if (passed.length === 0) return null;
  return {
    message: `is given ${passed.length} host device${passed.length > 1 ? 's' : ''} not on the allowed list`,
    details: { devices: passed.map((d) => ({ pathOnHost: d.pathOnHost, pathInContainer: d.pathInContainer, permissions: d.permissions })) },
  };
}

function privilegedExec(_: CheckSettings, facts: ContainerFacts): Finding | null {
  const execs = facts.execs.filter((e) => e.privileged);
  if (execs.length === 0) return null;
  return {
    message: `ran docker exec --privileged (${execs.length} process${execs.length > 1 ? 'es' : ''})`,
    details: { execs: execs.map((e) => ({ id: e.id, command: e.command, user: e.user, running: e.running })) },
  };
}

const LIMIT_SET: Readonly<Record<ResourceKind, (facts: ContainerFacts) => boolean>> = {
  memory: (f) => f.resources.memory > 0,
  pids: (f) => f.resources.pidsLimit > 0,
  cpu: (f) => f.resources.cpus > 0,
};

function resourceLimits({ require }: { readonly require: readonly ResourceKind[] }, facts: ContainerFacts): Finding | null {
  const missing = require.filter((kind) => !LIMIT_SET[kind](facts));
  return missing.length === 0 ? null : { message: `has no ${missing.join(', ')} limit`, details: { missing, resources: facts.resources } };
}

/** `Config.User` is `name|uid[:group|gid]`; empty means the image's default, root unless the image says otherwise (dockerd merges that in). */
function runsAsRoot(user: string): boolean {
  const name = user.split(':')[0]!;
  return name === '' || name === 'root' || /^0+$/.test(name);
}
