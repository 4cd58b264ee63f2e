import type { PublishedPort } from './facts.js';

/** `0.0.0.0:8080/tcp`, `[::]:8080/tcp`, `*:8080/tcp` (all addresses): how logs and the CLI name a published port. */
export function portLabel(port: PublishedPort): string {
  const host = port.hostIp === '' ? '*' : port.hostIp.includes(':') ? `[${port.hostIp}]` : port.hostIp;
  return `${host}:${port.hostPort}/${port.proto}`;
}
