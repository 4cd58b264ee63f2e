import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { dockwarden } from '../helpers/cli.js';
import { spawnDaemon, type DaemonProcess, type LogLine } from '../helpers/daemon.js';
import { TEST_IMAGE } from '../helpers/docker.js';
import { startGateDockerd, type GateDockerd } from '../helpers/gate-dockerd.js';
import { readLabel } from '../../src/adapters/selinux/native.js';
import { until } from '../helpers/until.js';
import { sample, scrape } from '../helpers/metrics.js';

/**
 * The gate served by the real daemon (`gate.enabled`), for a real dockerd started with
 * `--authorization-plugin`: refusals are logged and alerted, audit mode lets through and says what
 * it would have refused, and while the daemon is down dockerd holds requests until it is back.
 */

const LABEL = 'dw-gate-daemon-test';
const gateSocket = join(mkdtempSync(join(tmpdir(), 'dw-gate-daemon-')), 'gate.sock');
/** Volumes relabelled and storage directories made under here (relabelling forced on: this kernel has no SELinux). */
const storage = mkdtempSync('/var/tmp/dw-gate-storage-'); // ext4 here: it holds security.selinux xattrs
const policy = (mode: string, extraChecks = '') => `version: 1
mode: ${mode}
containers:
  capabilities: { forbidden: [SYS_ADMIN], action: kill }
  privileged: { action: kill }
${extraChecks}volumes:
  create:
    - { match: { container: "dw-gate-vol-*" }, path: ${storage}/data, owner: "4321:4321", mode: "0750" }
  selinux: { relabel: shared, roots: [${storage}] }
`;

let gated: GateDockerd;
let daemon: DaemonProcess;
const spawn = (mode: string) =>
  spawnDaemon({ policy: policy(mode), dockerSocket: '/run/dw-gate/docker.sock', extraConfig: `firewall:\n  backend: nftables\nselinux:\n  enabled: true\ngate:\n  enabled: true\n  socket: ${gateSocket}` });

t.before(async () => {
  daemon = spawn('enforce');
  await daemon.waitForLog((l) => l.msg === 'authorization gate serving');
  gated = await startGateDockerd(gateSocket);
  await daemon.waitForLog((l) => l.msg === 'reconciled');
});

t.teardown(async () => {
  // While the gate still answers: without it dockerd holds every request for ~30 s.
  const left = await gated.docker.listContainers({ all: true, filters: { label: [LABEL] } }).catch(() => []);
  await Promise.all(left.map((c) => gated.docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
  await daemon.stop('SIGKILL');
  await gated.stop();
  rmSync(storage, { recursive: true, force: true });
  await dockwarden(['firewall', 'remove'], { DOCKWARDEN_FIREWALL_BACKEND: 'nftables' });
});

let reloads = 0;
/** The enforce policy with `extra` checks, in force once the daemon says so. */
const setPolicy = async (extra: string) => {
  const text = `${policy('enforce', extra)}# reload ${++reloads}\n`;
  writeFileSync(daemon.policyFile, text);
  const hash = createHash('sha256').update(text).digest('hex');
  await daemon.waitForLog((l) => l.msg === 'policy reloaded' && (l.policy as { hash: string }).hash === hash);
};

const create = (hostConfig: Record<string, unknown>, name?: string) =>
  gated.docker.createContainer({ Image: TEST_IMAGE, Cmd: ['sleep', '60'], Labels: { [LABEL]: '1' }, HostConfig: hostConfig, ...(name && { name }) });

t.test('a forbidden container is refused, logged and alerted; the daemon judges through its own gate', async (t) => {
  const name = `dw-gate-refused-${process.pid}`;
  const error = (await create({ CapAdd: ['SYS_ADMIN'] }, name).then(() => null, (e: unknown) => e)) as { statusCode?: number } | null;
  t.equal(error?.statusCode, 403);
  const refusal = await daemon.waitForLog((l) => l.msg === 'gate refused');
  t.same(refusal.violations, ['capabilities']);
  t.equal((refusal.container as { name: string }).name, name);
  const alert = await daemon.waitForLog((l) => l.msg === 'alert' && (l.alert as { action: string }).action === 'refused');
  t.match(alert.alert, { check: 'capabilities', severity: 'high', message: 'refused at create: holds forbidden capabilities: SYS_ADMIN', container: { name } });
  t.same(await gated.docker.listContainers({ all: true, filters: { name: [name] } }), [], 'never created');
  const { body } = await scrape({ socketPath: daemon.metricsSocket });
  t.ok(sample(body, 'dockwarden_gate_decision_seconds_count{route="create",outcome="refused"}')! >= 1, 'the refusal is a timed decision');
  t.ok(sample(body, 'dockwarden_gate_decision_seconds_count{route="other",outcome="allowed"}')! >= 1, 'so are the requests let through');
  // A plain one passes; the daemon's own inspect of it went through the gate as well.
  const plain = await create({});
  await plain.start();
  await daemon.waitForLog((l) => l.msg === 'container judged' && (l.container as { id: string }).id === plain.id);
  await plain.remove({ force: true });
});

t.test('a create with a violation that is only alerted is let through, alerted when it appears (before it ever runs), and forgotten when removed', async (t) => {
  await setPolicy('  root-user: { action: alert }\n'); // TEST_IMAGE runs as root
  const container = await create({});
  const alert = await daemon.waitForLog((l) => l.msg === 'alert' && (l.alert as { container?: { id: string } }).container?.id === container.id);
  t.match(alert.alert, { check: 'root-user', action: 'alert' });
  t.equal((await container.inspect()).State.Status, 'created');
  await container.remove({ force: true });
  await daemon.waitForLog((l) => l.msg === 'container gone' && (l.container as { id: string }).id === container.id);
  await setPolicy('');
});

t.test('a start waits for the daemon: the storage directory made and the volume labelled before the process runs', async (t) => {
  // `docker run`: create, then start at once. The container reports what it finds at its first instruction.
  const container = await gated.docker.createContainer({
    name: `dw-gate-vol-${process.pid}`, Image: TEST_IMAGE, Labels: { [LABEL]: '1' },
    Cmd: ['sh', '-c', 'stat -c "%u:%g %a" /data; sleep 60'],
    HostConfig: { Binds: [`${storage}/data:/data`] },
  });
  await container.start();
  const seen = await until(async () => {
    const logs = (await container.logs({ stdout: true, stderr: true })).toString('utf8');
    return /\d+:\d+ \d+/.test(logs) ? logs : undefined;
  }, 30_000, 'the container to report /data');
  t.match(seen, /4321:4321 750/, 'the declared owner and mode, not the root:root 755 dockerd would make');
  t.equal(readLabel(`${storage}/data`), 'system_u:object_r:container_file_t:s0', 'labelled before the start was allowed');
  await container.remove({ force: true });
});

t.test('audit mode: allowed, and the refusal it would have been is said', async (t) => {
  writeFileSync(daemon.policyFile, policy('audit'));
  await daemon.waitForLog((l) => l.msg === 'policy reloaded' && (l.policy as { mode: string }).mode === 'audit');
  const container = await create({ CapAdd: ['SYS_ADMIN'] });
  t.ok(container.id, 'created');
  const line = await daemon.waitForLog((l) => l.msg === 'gate would have refused (audit mode)');
  t.same(line.violations, ['capabilities']);
  const alert = await daemon.waitForLog((l: LogLine) => l.msg === 'alert' && /^would have been refused/.test((l.alert as { message: string }).message));
  t.equal((alert.alert as { action: string }).action, 'alert');
  await container.remove({ force: true });
  writeFileSync(daemon.policyFile, policy('enforce'));
  await daemon.waitForLog((l) => l.msg === 'policy reloaded' && (l.policy as { mode: string }).mode === 'enforce');
});

t.test('a name moved to another image between two creates is judged on the image it names now', async (t) => {
  // root-user tells the images apart: TEST_IMAGE runs as root, one committed from a `--user 1000` container does not.
  await setPolicy('  root-user: { action: kill }\n');
  const repo = 'dw-gate-moved';
  const name = `${repo}:${process.pid}`;
  const base = await gated.docker.createContainer({ Image: TEST_IMAGE, Cmd: ['true'], User: '1000', Labels: { [LABEL]: '1' } });
  const nonRoot = `${repo}:non-root`;
  const root = `${repo}:root`;
  await base.commit({ repo, tag: 'non-root' });
  await base.commit({ repo, tag: 'root', changes: 'USER root' });
  await base.remove();
  t.teardown(async () => {
    for (const image of [name, nonRoot, root]) await gated.docker.getImage(image).remove({ force: true }).catch(() => {});
    await setPolicy('');
  });
  const moveTo = (image: string) => gated.docker.getImage(image).tag({ repo, tag: String(process.pid) });
  const judged = () =>
    gated.docker.createContainer({ Image: name, Cmd: ['true'], Labels: { [LABEL]: '1' } }).then(
      async (c) => (await c.remove(), 'created'),
      (e: { statusCode?: number; message?: string }) => (e.statusCode === 403 && /root-user/.test(e.message ?? '') ? 'refused' : `failed: ${e.message}`),
    );

  // `docker tag`, each create right after the move; the second of two finds the first's look-up kept.
  await moveTo(nonRoot);
  t.equal(await judged(), 'created', 'the name names the non-root image');
  t.equal(await judged(), 'created', 'still');
  await moveTo(root);
  t.equal(await judged(), 'refused', 'tag: the name now names the root image');
  t.equal(await judged(), 'refused', 'still');
  await moveTo(nonRoot);
  t.equal(await judged(), 'created', 'tag: and back');

  // `docker load` of an archive made while the name named the root image.
  await moveTo(root);
  const archive = await gated.docker.getImage(name).get();
  const chunks: Buffer[] = [];
  for await (const chunk of archive as AsyncIterable<Buffer>) chunks.push(chunk);
  await moveTo(nonRoot);
  t.equal(await judged(), 'created');
  const loading = (await gated.docker.loadImage(Readable.from([Buffer.concat(chunks)]))) as NodeJS.ReadableStream;
  await new Promise((resolve, reject) => gated.docker.modem.followProgress(loading, (error) => (error ? reject(error) : resolve(null))));
  t.equal(await judged(), 'refused', 'load: the name now names the root image');

  // `docker commit --change 'USER root' <container> <name>`.
  await moveTo(nonRoot);
  t.equal(await judged(), 'created');
  const other = await gated.docker.createContainer({ Image: nonRoot, Cmd: ['true'], Labels: { [LABEL]: '1' } });
  await other.commit({ repo, tag: String(process.pid), changes: 'USER root' });
  await other.remove();
  t.equal(await judged(), 'refused', 'commit: the name now names the committed root image');

  // `docker rmi <name>` then a tag of the root image under it.
  await moveTo(nonRoot);
  t.equal(await judged(), 'created');
  await gated.docker.getImage(name).remove();
  await moveTo(root);
  t.equal(await judged(), 'refused', 'untag and tag: the name now names the root image');
});

t.test('while the daemon is down dockerd holds requests; they are answered once it is back', async (t) => {
  t.equal(await daemon.stop('SIGTERM'), 0);
  const started = Date.now();
  // Issued while nothing serves the plugin: dockerd retries the plugin for up to ~30 s.
  const pending = gated.docker.listContainers({ all: true, filters: { label: [LABEL] } });
  daemon = spawn('enforce');
  await daemon.waitForLog((l) => l.msg === 'authorization gate serving');
  t.same(await pending, [], 'the request held across the restart was answered');
  t.comment(`answered ${Date.now() - started} ms after it was sent`);
  await daemon.waitForLog((l) => l.msg === 'reconciled');
});

t.test('socket activation: the socket is there before the daemon, which serves the one systemd passes', async (t) => {
  t.equal(await daemon.stop('SIGTERM'), 0);
  // As dockwarden-gate.socket does: listen first, start the service at the first connection, pass
  // the socket as fd 3 named dockwarden-gate. gate.socket names another path: the passed one wins.
  daemon = spawnDaemon({
    policy: policy('enforce'),
    dockerSocket: '/run/dw-gate/docker.sock',
    extraConfig: `firewall:\n  backend: nftables\ngate:\n  enabled: true\n  socket: ${gateSocket}.unused`,
    wrapper: ['systemd-socket-activate', '--listen', gateSocket, '--fdname=dockwarden-gate', '-E', 'PATH'],
  });
  const error = (await create({ Privileged: true }).then(() => null, (e: unknown) => e)) as { statusCode?: number } | null;
  t.equal(error?.statusCode, 403, 'the first request started the daemon and was judged by it');
  const serving = await daemon.waitForLog((l) => l.msg === 'authorization gate serving');
  t.same(serving.gate, { socket: 'fd 3 from systemd' });
  await daemon.waitForLog((l) => l.msg === 'reconciled');
});
