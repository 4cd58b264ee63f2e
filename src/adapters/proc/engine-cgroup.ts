/**
 * The cgroup v2 of the watched engine's dockerd, for the rule that drops new connections to docker-proxy's
 * listeners of ports not judged (render.ts, README "Published ports" › The guard). That rule matches every
 * local socket in the cgroup (and below it), so the cgroup is used only when it holds dockerd and its own
 * processes alone and dockerd listens on no port of its own: as systemd runs it (`docker.service`).
 * Otherwise there is none, with the reason, and the ports not judged are closed as before (by the repair).
 *
 * Read from procfs and the cgroup v2 tree; nothing of a container's reaches the result: the path comes
 * from `/proc/<dockerd>/cgroup`, and is checked against what nft may be given (safe-values.ts).
 */
import { readdirSync, statSync } from 'node:fs';
import type { EngineCgroup } from '../../domain/firewall/plan.js';
import { cgroupPath, isUnsafeValueError } from '../firewall/safe-values.js';
import { linkOrNull } from './docker-proxy.js';
import { readProcFile, readProcStat } from './proc-file.js';

export type EngineCgroupRead = { readonly cgroup: EngineCgroup } | { readonly none: string };

export interface EngineCgroupPaths {
  readonly proc?: string;
  /** Where nft resolves a `socket cgroupv2` path (its SYSFS_CGROUPSV2_PATH). */
  readonly cgroupRoot?: string;
}

/** `dockerd`: the pid of the watched engine's dockerd (DockerProxyReader.engine). */
export function readEngineCgroup(dockerd: string, { proc = '/proc', cgroupRoot = '/sys/fs/cgroup' }: EngineCgroupPaths = {}): EngineCgroupRead {
  const own = /^0::(\/.*)$/m.exec(readProcFile(`${proc}/${dockerd}/cgroup`) ?? '')?.[1];
  if (own === undefined) return { none: 'dockerd is in no cgroup v2' };
  if (own === '/') return { none: 'dockerd is in the root cgroup, with every other process' };
  const mountPoint = cgroup2Mount(cgroupRoot, proc);
  if (mountPoint === null) return { none: `no cgroup v2 mounted at ${cgroupRoot} or in a directory of it` };
  const candidate = { mount: mountPoint.slice(cgroupRoot.length + 1), path: own.slice(1) };
  try {
    cgroupPath({ ...candidate, id: 0 });
  } catch (error) {
    if (isUnsafeValueError(error)) return { none: `dockerd's cgroup ${JSON.stringify(own)} is not a path nft may be given` };
    throw error;
  }
  const dir = `${mountPoint}${own}`;
  let id: number;
  try {
    id = statSync(dir).ino;
  } catch {
    return { none: `dockerd's cgroup ${own} is gone` };
  }
  const stranger = strangerIn(proc, dir, dockerd);
  if (stranger !== null) return { none: `dockerd's cgroup ${own} ${stranger}` };
  return { cgroup: { ...candidate, id } };
}

/** The cgroup v2 mount nft can reach: `cgroupRoot` itself (unified) or one directory of it (hybrid: `unified`); null when none. */
export function cgroup2Mount(cgroupRoot = '/sys/fs/cgroup', proc = '/proc'): string | null {
  for (const line of (readProcFile(`${proc}/self/mountinfo`) ?? '').split('\n')) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
    const [fields = '', after = ''] = line.split(' - ');
    const [, , , root, mountPoint] = fields.split(' ');
    if (!after.startsWith('cgroup2 ') || root !== '/' || mountPoint === undefined) continue;
    if (mountPoint === cgroupRoot || (mountPoint.startsWith(`${cgroupRoot}/`) && !mountPoint.slice(cgroupRoot.length + 1).includes('/'))) return mountPoint;
  }
  return null;
}

/**
 * What in `dir` and the cgroups below it is not dockerd's alone, in words; null when nothing: a process
 * neither dockerd nor one of its descendants (nor a containerd-shim, which containerd started from
 * there and left to init), or one other than docker-proxy (dockerd itself, its containerd) holding an
 * inet listener, which the rule would close.
 */
function strangerIn(proc: string, dir: string, dockerd: string): string | null {
  const listeners = inetListeners(proc, dockerd);
  // A process gone between the list and its reads (dockerd runs short-lived children) is no stranger.
  const gone = (pid: string): boolean => readProcStat(proc, pid) === null;
  for (const pid of cgroupProcs(dir)) {
    const comm = readProcFile(`${proc}/${pid}/comm`)?.trim();
    if (comm === undefined || comm.startsWith('containerd-shim')) continue;
    if (!descendsFrom(proc, pid, dockerd)) {
      if (gone(pid)) continue;
      return `holds process ${pid} (${comm}), not dockerd's`;
    }
    if (comm === 'docker-proxy') continue;
    const port = listeningPort(proc, pid, listeners);
    if (port !== null) return `holds ${comm} (${pid}), listening on ${port}`;
  }
  return null;
}

function cgroupProcs(dir: string): string[] {
  const below = (() => {
    try {
      return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `${dir}/${e.name}`);
    } catch {
      return [];
    }
  })();
  const here = (readProcFile(`${dir}/cgroup.procs`) ?? '').split('\n').filter((pid) => pid !== '');
  return [...here, ...below.flatMap(cgroupProcs)];
}

/** `pid` is `ancestor` or below it, by parent pids (`/proc/<pid>/stat` field 4). */
function descendsFrom(proc: string, pid: string, ancestor: string): boolean {
  for (let current = pid, hops = 0; hops < 64; hops++) {
    if (current === ancestor) return true;
    const parent = readProcStat(proc, current)?.[1];
    if (parent === undefined || parent === '0' || parent === current) return false;
    current = parent;
  }
  return false;
}

/** Socket inode → `proto/port` of every TCP listener and bound UDP socket of this namespace (as `pid` sees it). */
function inetListeners(proc: string, pid: string): Map<string, string> {
  const listeners = new Map<string, string>();
  for (const table of ['tcp', 'tcp6', 'udp', 'udp6']) {
    for (const line of (readProcFile(`${proc}/${pid}/net/${table}`) ?? '').split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const [, local = '', , state, , , , , , inode] = line.trim().split(/\s+/);
      if (inode === undefined || inode === '0' || (table.startsWith('tcp') && state !== '0A')) continue;
      listeners.set(`socket:[${inode}]`, `${table.replace('6', '')}/${Number.parseInt(local.split(':')[1] ?? '', 16)}`);
    }
  }
  return listeners;
}

function listeningPort(proc: string, pid: string, listeners: ReadonlyMap<string, string>): string | null {
  let fds: string[];
  try {
    fds = readdirSync(`${proc}/${pid}/fd`);
  } catch {
    return null; // gone meanwhile
  }
  for (const fd of fds) {
    const port = listeners.get(linkOrNull(`${proc}/${pid}/fd/${fd}`) ?? '');
    if (port !== undefined) return port;
  }
  return null;
}
