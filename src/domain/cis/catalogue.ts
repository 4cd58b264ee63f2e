/**
 * The CIS Docker Benchmark items a host daemon can judge, and what decides each: a dockwarden check
 * (optionally one part of it, e.g. the `net` namespace of `host-namespaces`), or a reason the item is
 * only noted. Pure data. Ids and titles are CIS Docker Benchmark v1.6.0's, numbered as
 * docker-bench-security 1.6.0 numbers them (its §5 starts with 5.1 swarm mode, so runtime items are one
 * higher than in the 1.2–1.4 numbering: read-only root is 5.13, not 5.12).
 */

export const BENCHMARK = { name: 'CIS Docker Benchmark', version: '1.6.0', numbering: 'docker-bench-security 1.6.0' } as const;

/** A check id (`capabilities`, `images.healthcheck`, …) and, for checks judging several things, the one that matters here. */
export interface CheckRef {
  readonly check: string;
  readonly part?: string;
}

export type ItemRule =
  | { readonly kind: 'check'; readonly ref: CheckRef }
  /** Not applicable without AppArmor on the host. */
  | { readonly kind: 'check-if-apparmor'; readonly ref: CheckRef }
  /** Not judged: why (a sentence for a human). */
  | { readonly kind: 'note'; readonly reason: string };

export interface CisItem {
  readonly id: string;
  readonly title: string;
  /** CIS's own marking: an automated audit, or one needing a person. */
  readonly assessment: 'automated' | 'manual';
  readonly rule: ItemRule;
}

const check = (c: string, part?: string): ItemRule => ({ kind: 'check', ref: part === undefined ? { check: c } : { check: c, part } });
const note = (reason: string): ItemRule => ({ kind: 'note', reason });
const item = (id: string, title: string, assessment: CisItem['assessment'], rule: ItemRule): CisItem => ({ id, title, assessment, rule });

export const CIS_ITEMS: readonly CisItem[] = [
  item('4.1', 'Ensure that a user for the container has been created', 'automated', check('root-user')),
  item('4.2', 'Ensure that containers use only trusted base images', 'manual', check('image')),
  item('4.5', 'Ensure Content trust for Docker is Enabled', 'automated', note('DOCKER_CONTENT_TRUST is a setting of the docker client; the engine does not see it')),
  item('4.6', 'Ensure that HEALTHCHECK instructions have been added to container images', 'automated', check('images.healthcheck')),
  item('5.1', 'Ensure swarm mode is not Enabled, if not needed', 'automated', note('an engine setting, not a container\'s; `docker info` shows it')),
  item('5.2', 'Ensure that, if applicable, an AppArmor Profile is enabled', 'automated', { kind: 'check-if-apparmor', ref: { check: 'apparmor-unconfined' } }),
  item('5.3', 'Ensure that, if applicable, SELinux security options are set', 'automated', check('label-disabled')),
  item('5.4', 'Ensure that Linux kernel capabilities are restricted within containers', 'automated', check('capabilities')),
  item('5.5', 'Ensure that privileged containers are not used', 'automated', check('privileged')),
  item('5.6', 'Ensure sensitive host system directories are not mounted on containers', 'automated', check('sensitive-mounts')),
  item('5.7', 'Ensure sshd is not run within containers', 'automated', note('no check: which programs a container may run is not part of the policy')),
  item('5.8', 'Ensure privileged ports are not mapped within containers', 'automated', check('privileged-ports')),
  item('5.9', 'Ensure that only needed ports are open on the container', 'manual', note('which ports are needed is the admin\'s call; `ports` rules decide who may reach each published port (`dockwarden status`)')),
  item('5.10', 'Ensure that the host\'s network namespace is not shared', 'automated', check('host-namespaces', 'net')),
  item('5.11', 'Ensure that the memory usage for containers is limited', 'automated', check('resource-limits', 'memory')),
  item('5.12', 'Ensure that CPU priority is set appropriately on containers', 'automated', check('resource-limits', 'cpu')),
  item('5.13', 'Ensure that the container\'s root filesystem is mounted as read only', 'automated', check('read-only-root')),
  item('5.14', 'Ensure that incoming container traffic is bound to a specific host interface', 'automated', check('wildcard-bind')),
  item('5.15', 'Ensure that the \'on-failure\' container restart policy is set to \'5\'', 'automated', check('restart-policy')),
  item('5.16', 'Ensure that the host\'s process namespace is not shared', 'automated', check('host-namespaces', 'pid')),
  item('5.17', 'Ensure that the host\'s IPC namespace is not shared', 'automated', check('host-namespaces', 'ipc')),
  item('5.18', 'Ensure that host devices are not directly exposed to containers', 'manual', check('devices')),
  item('5.19', 'Ensure that the default ulimit is overwritten at runtime if needed', 'manual', check('ulimits')),
  item('5.20', 'Ensure mount propagation mode is not set to shared', 'automated', check('mount-propagation')),
  item('5.21', 'Ensure that the host\'s UTS namespace is not shared', 'automated', check('host-namespaces', 'uts')),
  item('5.22', 'Ensure the default seccomp profile is not Disabled', 'automated', check('seccomp-unconfined')),
  item('5.23', 'Ensure that docker exec commands are not used with the privileged option', 'automated', check('privileged-exec')),
  item('5.24', 'Ensure that docker exec commands are not used with the user=root option', 'manual', check('root-exec')),
  item('5.25', 'Ensure that cgroup usage is confirmed', 'automated', check('cgroup-parent')),
  item('5.26', 'Ensure that the container is restricted from acquiring additional privileges', 'automated', check('no-new-privileges')),
  item('5.27', 'Ensure that container health is checked at runtime', 'automated', check('healthcheck')),
  item('5.28', 'Ensure that Docker commands always make use of the latest version of their image', 'manual', check('images.latest-tag')),
  item('5.29', 'Ensure that the PIDs cgroup limit is used', 'automated', check('resource-limits', 'pids')),
  item('5.30', 'Ensure that Docker\'s default bridge \'docker0\' is not used', 'manual', check('default-bridge')),
  item('5.31', 'Ensure that the host\'s user namespaces are not shared', 'automated', check('host-namespaces', 'userns')),
  item('5.32', 'Ensure that the Docker socket is not mounted inside any containers', 'automated', check('docker-socket')),
];

