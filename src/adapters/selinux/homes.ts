import { readFile } from 'node:fs/promises';

/** Every home directory of the password database: relabelling one would lock its user out. */
export async function readHomes(file = '/etc/passwd'): Promise<string[]> {
  return homesOf(await readFile(file, 'utf8'));
}

/** `name:password:uid:gid:gecos:home:shell` lines → absolute home directories, each once. */
export function homesOf(passwd: string): string[] {
  const homes = passwd.split('\n').map((line) => line.split(':')[5] ?? '');
  return [...new Set(homes.filter((home) => home.startsWith('/')).map((home) => (home.length > 1 ? home.replace(/\/+$/, '') : home)))];
}
