import type { Config } from './config.js';
import type { Policy } from '../domain/policy/model.js';
import { DEFAULT_DOCKER_SOCKETS } from '../domain/policy/schema.js';

/**
 * The engine sockets a mounted file is recognised as by identity (device and inode): the one
 * dockwarden talks to and every path the `docker-socket` check lists, its defaults included.
 */
export function engineSockets(config: Config, policy: Policy): string[] {
  return [...new Set([config.docker.socket, ...DEFAULT_DOCKER_SOCKETS, ...(policy.containers.dockerSocket?.paths ?? [])])];
}
