/**
 * A name the kernel could give a network interface, and nothing a ruleset could read as syntax:
 * at most 15 characters (IFNAMSIZ - 1) of letters, digits and `_ . : -`. Checked where a name enters
 * (Docker's networks, the config, the state file) and again where it is rendered.
 */
const INTERFACE_NAME = /^[A-Za-z0-9_.:-]{1,15}$/;

export function isInterfaceName(name: unknown): name is string {
  return typeof name === 'string' && INTERFACE_NAME.test(name);
}
