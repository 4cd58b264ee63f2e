/**
 * What the published-port firewall tests share: both backends, the CLI, a daemon per backend, IPv6
 * for the client namespace, bridge networks removed with their test.
 */
import { execFileSync } from 'node:child_process';
import type { Test } from 'tap';
import { CLI, spawnDaemon, type DaemonProcess } from './daemon.js';
import { docker, DOCKER_SOCKET, removeTestContainers } from './docker.js';
import type { NetnsClient } from './netns.js';

export const BACKENDS = ['nftables', 'iptables'] as const;
export type Backend = (typeof BACKENDS)[number];

// IPv6 documentation prefix (RFC 3849): on no route of this machine.
export const HOST6 = '2001:db8:dd::1';
export const GOOD6 = '2001:db8:dd::10';
export const OTHER6 = '2001:db8:dd::11';

export const dockwarden = (backend: Backend, ...args: string[]): string =>
  execFileSync(process.execPath, [CLI, ...args], { env: { ...process.env, DOCKWARDEN_FIREWALL_BACKEND: backend }, encoding: 'utf8' });
export const removeFirewall = (): void => BACKENDS.forEach((backend) => dockwarden(backend, 'firewall', 'remove'));

/** Every test of `t` starts and ends with no test container and no ruleset of ours. */
export function cleanSlate(t: Test): void {
  t.beforeEach(async () => {
    await removeTestContainers();
    removeFirewall();
  });
  t.teardown(async () => {
    await removeTestContainers();
    removeFirewall();
  });
}

/** The daemon on `backend` (drift checked every second), killed with the test. */
export function firewallDaemon(t: Test, backend: Backend, policy: string, stateDir?: string): DaemonProcess {
  const d = spawnDaemon({
    policy,
    dockerSocket: DOCKER_SOCKET,
    extraConfig: `firewall:\n  backend: ${backend}\n  driftCheckSeconds: 1`,
    ...(stateDir ? { stateDir } : {}),
  });
  t.teardown(() => d.stop('SIGKILL'));
  return d;
}

/** Gives the client namespace IPv6: the host end HOST6, the client GOOD6 and OTHER6 (no DAD wait). */
export function addIpv6(client: NetnsClient): void {
  execFileSync('ip', ['-6', 'addr', 'add', `${HOST6}/64`, 'dev', client.hostVeth, 'nodad']);
  for (const addr of [GOOD6, OTHER6]) execFileSync('ip', ['-n', client.name, '-6', 'addr', 'add', `${addr}/64`, 'dev', client.clientVeth, 'nodad']);
}

/** A bridge network (driver options as `docker network create -o`), removed with the test after its containers. */
export async function bridgeNetwork(t: Test, name: string, options: Record<string, string> = {}): Promise<void> {
  await docker.getNetwork(name).remove().catch(() => {});
  await docker.createNetwork({ Name: name, Driver: 'bridge', Options: options });
  t.teardown(async () => {
    await removeTestContainers();
    await docker.getNetwork(name).remove().catch(() => {});
  });
}
