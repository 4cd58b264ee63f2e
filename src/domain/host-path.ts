/** Whether host path `dir` is `path` or one of its ancestors (both absolute and normalised). */
export function contains(dir: string, path: string): boolean {
  return dir === path || dir === '/' || path.startsWith(`${dir}/`);
}

/** Whether one of the two paths contains the other. */
export function overlaps(a: string, b: string): boolean {
  return contains(a, b) || contains(b, a);
}

/**
 * Whether a mount of host path `path` exposes the listed path `listed`: it is that path, holds it
 * (`-v /run` holds `/run/docker.sock`) or lies below it (`-v /etc/cron.d` is part of `/etc`). `/`
 * covers only itself: every mount lies below it.
 */
export function exposes(path: string, listed: string): boolean {
  return contains(path, listed) || (listed !== '/' && contains(listed, path));
}
