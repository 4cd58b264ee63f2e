import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';
import { spawnDaemon, type LogLine } from '../helpers/daemon.js';

/**
 * Issue 21: a reload must not hold the event loop. The 40,000-key policy of the finding (33 s to reject
 * before) is written over the live one; while it is read, enforcement goes on and SIGTERM still exits.
 */
const POLICY = 'version: 1\ncontainers:\n  capabilities: { forbidden: [SYS_ADMIN], action: kill }\n';
const hugeBadPolicy = (variant: string): string => `${POLICY}${Array.from({ length: 40_000 }, (_, i) => `${variant}${i}: 1`).join('\n')}\n`;

const killed = (id: string) => (line: LogLine) => line.msg === 'container killed' && (line.container as { id?: string } | undefined)?.id === id;
const reading = (line: LogLine) => line.msg === 'reading the policy for a reload';
const rejected = (line: LogLine) => line.msg === 'policy reload rejected; the last good policy stays in force';

/** A daemon enforcing POLICY, then reading a 40,000-key policy written over it (SIGHUP). */
async function daemonReadingHugePolicy(t: Test, variant: string) {
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET });
  t.teardown(() => daemon.stop('SIGKILL'));
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  writeFileSync(daemon.policyFile, hugeBadPolicy(variant));
  daemon.child.kill('SIGHUP');
  await daemon.waitForLog(reading);
  return daemon;
}

t.before(removeTestContainers);
t.teardown(removeTestContainers);

t.test('while a 40,000-key policy is being rejected, a SYS_ADMIN container is still killed promptly', async (t) => {
  const daemon = await daemonReadingHugePolicy(t, 'k');
  const id = await runContainer({ hostConfig: { CapAdd: ['SYS_ADMIN'] } });
  // A generous bound: the kill takes well under a second; before, the loop was held for the whole read (33 s, twice).
  await daemon.waitForLog(killed(id), 20_000);
  const rejection = await daemon.waitForLog(rejected, 120_000);
  const errors = rejection.errors as string[];
  t.equal(errors.length, 101, 'the first 100 errors and a count of the rest');
  t.match(errors[0], /policy\.yaml:4:1: unknown key "k0"/);
  t.match(errors[100], /and 39900 more errors/);
  t.comment(`kill logged ${daemon.logs.findIndex(killed(id)) < daemon.logs.findIndex(rejected) ? 'before' : 'after'} the rejection`);
  t.equal(await daemon.stop(), 0);
});

t.test('SIGTERM during a reload exits promptly and cleanly', async (t) => {
  const daemon = await daemonReadingHugePolicy(t, 'x');
  daemon.child.kill('SIGTERM');
  // A bound on the wait, not a measurement: before, SIGTERM was handled only once the read was over.
  const code = await Promise.race([daemon.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running after 20 s'), 20_000).unref())]);
  t.equal(code, 0);
  t.ok(daemon.logs.some((l) => l.msg === 'stopped'));
});
