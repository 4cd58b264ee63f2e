/**
 * Device cgroup rules (`--device-cgroup-rule`, `HostConfig.DeviceCgroupRules`): `type major:minor access`
 * as dockerd accepts them (`a|b|c`, a number or `*` each, some of `rwm`).
 */
export interface DeviceCgroupRule {
  readonly type: 'a' | 'b' | 'c';
  readonly major: number | '*';
  readonly minor: number | '*';
  /** Some of `r`, `w`, `m`. */
  readonly access: string;
  /** As written. */
  readonly text: string;
}

const RULE = /^([abc]) ([0-9]{1,10}|\*):([0-9]{1,10}|\*) ([rwm]{1,3})$/;

export function parseDeviceCgroupRule(text: string): DeviceCgroupRule | undefined {
  const m = RULE.exec(text);
  if (!m) return undefined;
  const number = (part: string) => (part === '*' ? '*' : Number(part));
  // The kernel's devices cgroup (v1) reads any `a` rule as "every device, rwm", whatever follows.
  if (m[1] === 'a') return { type: 'a', major: '*', minor: '*', access: 'rwm', text };
  return { type: m[1] as 'b' | 'c', major: number(m[2]!), minor: number(m[3]!), access: m[4]!, text };
}

/**
 * What every non-privileged container is allowed anyway, as the devices cgroup of a default
 * `docker run` on Docker 20.10 with runc 1.1 lists it: mknod of any node, and read/write on
 * null, zero, full, random, urandom, tty, console, ptmx, /dev/net/tun and the container's ptys.
 */
export const DOCKER_DEFAULT_DEVICE_RULES: readonly DeviceCgroupRule[] = [
  'b *:* m', 'c *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm',
  'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm', 'c 10:200 rwm', 'c 136:* rwm',
].map((text) => parseDeviceCgroupRule(text)!);

/** Whether `rules` already grant every access `rule` asks for, on every device it names. */
export function grantedBy(rule: DeviceCgroupRule, rules: readonly DeviceCgroupRule[]): boolean {
  const types = rule.type === 'a' ? (['b', 'c'] as const) : [rule.type];
  const covers = (wide: number | '*', narrow: number | '*') => wide === '*' || wide === narrow;
  return types.every((type) =>
    [...rule.access].every((letter) =>
      rules.some((r) => (r.type === 'a' || r.type === type) && covers(r.major, rule.major) && covers(r.minor, rule.minor) && r.access.includes(letter)),
    ),
  );
}
