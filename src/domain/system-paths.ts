/**
 * The `/proc` and `/sys` paths Docker hides (bind-mounts `/dev/null` or an empty tmpfs over) and makes
 * read-only in every non-privileged container (moby oci/defaults.go; the same lists since before
 * 20.10). Left open, `/proc/sys` lets container root write the host's `kernel.core_pattern`.
 */
export const DOCKER_MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats',
  '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
];
export const DOCKER_READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** Docker's masked and read-only paths a container has left open; a masked path needs no read-only one. */
export function unmaskedPaths(paths: { readonly masked: readonly string[]; readonly readOnly: readonly string[] }) {
  return {
    masked: DOCKER_MASKED_PATHS.filter((path) => !paths.masked.includes(path)),
    readOnly: DOCKER_READONLY_PATHS.filter((path) => !paths.readOnly.includes(path) && !paths.masked.includes(path)),
  };
}
