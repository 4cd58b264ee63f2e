import { readFile, stat } from 'node:fs/promises';

/**
 * Whether AppArmor confines anything on this host, as container runtimes decide it (runc's
 * `apparmor.IsEnabled`): the module says `Y`, and securityfs shows AppArmor. A sysfs parameter is one
 * page at most, so the read is bounded by the kernel.
 */
export async function apparmorEnabled(
  read: (path: string) => Promise<string> = (path) => readFile(path, 'utf8'),
  exists: (path: string) => Promise<boolean> = (path) => stat(path).then(() => true, () => false),
): Promise<boolean> {
  const enabled = await read('/sys/module/apparmor/parameters/enabled').catch(() => '');
  return enabled.trim().startsWith('Y') && (await exists('/sys/kernel/security/apparmor'));
}
