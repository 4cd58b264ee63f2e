/** Whether host path `dir` is `path` or one of its ancestors (both absolute and normalised). */
export function contains(dir: string, path: string): boolean {
  return dir === path || dir === '/' || path.startsWith(`${dir}/`);
}

/** Whether one of the two paths contains the other. */
export function overlaps(a: string, b: string): boolean {
  return contains(a, b) || contains(b, a);
}
