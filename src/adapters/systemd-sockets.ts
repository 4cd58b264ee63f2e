/**
 * Sockets systemd passes to the service (sd_listen_fds(3)): `LISTEN_PID` names this process,
 * `LISTEN_FDS` counts them from fd 3 on, `LISTEN_FDNAMES` names them (`FileDescriptorName=`).
 */
const FIRST_FD = 3;

/** The fd of the passed socket called `name`, or null when systemd passed none by that name to this process. */
export function inheritedSocket(env: NodeJS.ProcessEnv, name: string, pid: number = process.pid): number | null {
  if (env.LISTEN_PID !== String(pid)) return null;
  const count = Number(env.LISTEN_FDS);
  if (!Number.isSafeInteger(count) || count < 1) return null;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  const index = names.indexOf(name);
  return index >= 0 && index < count ? FIRST_FD + index : null;
}
