import type { Config } from './config.js';
import { DEFAULT_DOCKER_SOCKETS, type Policy } from '../domain/policy/model.js';

/**
 * The engine sockets a mounted file is recognised as by identity (device and inode): the one
 * dockwarden talks to and every path the `docker-socket` check lists, its defaults included.
 */
export function engineSockets(config: Config, policy: Policy): string[] {
  return [...new Set([config.docker.socket, ...DEFAULT_DOCKER_SOCKETS, ...(policy.containers.dockerSocket?.paths ?? [])])];
}

/**
 * The policy with the socket dockwarden talks to among the `docker-socket` check's paths, when the
 * check is on: the engine it watches is the engine, wherever its socket lives. With the identity
 * match above, a hard link or another path to that socket, and a directory holding it, are caught
 * by the check's defaults alone.
 */
export function withEngineSocket(config: Config, policy: Policy): Policy {
  const check = policy.containers.dockerSocket;
  if (!check || check.paths.includes(config.docker.socket)) return policy;
  return { ...policy, containers: { ...policy.containers, dockerSocket: { ...check, paths: [...check.paths, config.docker.socket] } } };
}
