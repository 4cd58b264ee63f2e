import t from 'tap';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerInspect } from '../../src/adapters/docker/facts.js';
import { readFacts, type ImageCache, type InspectClient } from '../../src/adapters/docker/read-facts.js';
import { docker, ensureTestDocker, runContainer, TEST_IMAGE } from '../helpers/docker.js';

const SLEEP = ['sleep', '3600'];
const created: string[] = [];

/** Only this file's containers are removed: other test files share the daemon. */
async function run(options: Parameters<typeof runContainer>[0] = {}): Promise<string> {
  const id = await runContainer({ cmd: SLEEP, ...options });
  created.push(id);
  return id;
}

async function remove(id: string): Promise<void> {
  await docker
    .getContainer(id)
    .remove({ force: true, v: true })
    .catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) throw err;
    });
}

t.before(ensureTestDocker);
t.teardown(() => Promise.all(created.map(remove)));

t.test('CapEff of the init process: SYS_ADMIN only when added', async (t) => {
  const [plain, admin] = await Promise.all([run(), run({ hostConfig: { CapAdd: ['SYS_ADMIN'] } })]);
  const plainFacts = await readFacts(docker, plain, new Map());
  const adminFacts = await readFacts(docker, admin, new Map());
  t.ok(plainFacts && adminFacts);
  t.equal(plainFacts!.state.running, true);
  t.ok(plainFacts!.state.pid > 0);
  t.notOk(plainFacts!.capabilities.effective?.includes('CAP_SYS_ADMIN'), 'default: no SYS_ADMIN');
  t.strictSame(plainFacts!.capabilities.effective, plainFacts!.capabilities.configured, 'default: effective = configured');
  t.ok(adminFacts!.capabilities.effective?.includes('CAP_SYS_ADMIN'), '--cap-add SYS_ADMIN: in CapEff');
  t.strictSame(adminFacts!.capabilities.added, ['CAP_SYS_ADMIN']);
});

t.test('a bind mount through a symlink resolves to the real path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-facts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const real = join(dir, 'real');
  const link = join(dir, 'link');
  mkdirSync(real);
  symlinkSync(real, link);
  const id = await run({ hostConfig: { Binds: [`${link}:/data:ro`] } });
  const facts = await readFacts(docker, id, new Map());
  const mount = facts!.mounts.find((m) => m.destination === '/data');
  t.match(mount, { type: 'bind', rw: false, source: link, realSource: realpathSync(real) }, 'dockerd reports the link; we resolve it');
});

t.test('published ports, with dockerd-chosen host ports', async (t) => {
  const id = await run({ publish: ['127.0.0.1::80/tcp', '53/udp'] });
  const { ports } = (await readFacts(docker, id, new Map()))!;
  const tcp = ports.filter((p) => p.proto === 'tcp');
  t.match(tcp, [{ hostIp: '127.0.0.1', containerPort: 80 }]);
  t.equal(tcp.length, 1);
  const udpIps = ports.filter((p) => p.proto === 'udp' && p.containerPort === 53).map((p) => p.hostIp);
  t.ok(udpIps.includes('0.0.0.0'), 'udp on every IPv4 address');
  for (const p of ports) t.ok(p.hostPort >= 1 && p.hostPort <= 65535, `${p.proto} ${p.hostIp} port ${p.hostPort}`);
});

t.test('a stopped container has no effective set', async (t) => {
  const id = await run({ cmd: ['true'] });
  await docker.getContainer(id).wait();
  const facts = (await readFacts(docker, id, new Map()))!;
  t.match(facts.state, { running: false, status: 'exited', pid: 0 });
  t.equal(facts.capabilities.effective, null);
});

t.test('a removed container reads as null', async (t) => {
  const id = await run();
  await remove(id);
  t.equal(await readFacts(docker, id, new Map()), null);
  t.equal(await readFacts(docker, 'dw-no-such-container', new Map()), null);
});

t.test('image inspects are cached briefly, since tags move', async (t) => {
  const id = await run();
  let imageInspects = 0;
  const counting: InspectClient = {
    getContainer: (c) => docker.getContainer(c),
    getImage: (image) => (imageInspects++, docker.getImage(image)),
    getExec: (e) => docker.getExec(e),
    getVolume: (name) => docker.getVolume(name),
  };
  let clock = 0;
  const options = { now: () => clock, imageTtlMs: 1_000 };
  const cache: ImageCache = new Map();
  const first = (await readFacts(counting, id, cache, options))!;
  t.ok(first.image.repoTags.includes(TEST_IMAGE));
  const tag = `facts-${process.pid}`;
  await docker.getImage(TEST_IMAGE).tag({ repo: 'dw-test/busybox', tag });
  t.teardown(() => docker.getImage(`dw-test/busybox:${tag}`).remove().catch(() => {}));

  const cached = (await readFacts(counting, id, cache, options))!;
  t.equal(imageInspects, 1, 'second read served from the cache');
  t.notOk(cached.image.repoTags.includes(`dw-test/busybox:${tag}`));

  clock = 1_000;
  const fresh = (await readFacts(counting, id, cache, options))!;
  t.equal(imageInspects, 2, 'expired entry fetched again');
  t.ok(fresh.image.repoTags.includes(`dw-test/busybox:${tag}`), 'the new tag is seen');
});

t.test('the image cache is bounded, oldest first', async (t) => {
  const id = await run();
  const cache: ImageCache = new Map([
    ['sha256:old', { refs: null, fetchedAt: 0 }],
    ['sha256:older', { refs: null, fetchedAt: 0 }],
  ]);
  await readFacts(docker, id, cache, { imageCacheLimit: 2 });
  t.equal(cache.size, 2);
  t.notOk(cache.has('sha256:old'), 'the oldest entry went');
  t.ok(cache.has('sha256:older'));
});

/** A client that reports one made-up inspect result, to aim readFacts at arbitrary pids. */
function fakeClient(inspect: ContainerInspect): InspectClient {
  return {
    getContainer: () => ({ inspect: async () => inspect }),
    getImage: () => ({ inspect: async () => ({ RepoTags: [], RepoDigests: [] }) }),
    getExec: (e) => docker.getExec(e),
    getVolume: (name) => docker.getVolume(name),
  };
}

t.test("every process of the container, from its cgroup: pids, names, capability sets", async (t) => {
  const id = await run({ cmd: ['sh', '-c', 'sleep 3601 & exec sleep 3602'], hostConfig: { CapDrop: ['ALL'], CapAdd: ['CHOWN'] } });
  const { State } = await docker.getContainer(id).inspect();
  const facts = (await readFacts(docker, id, new Map()))!;
  const byComm = [...facts.processes].sort((a, b) => a.pid - b.pid);
  t.same(byComm.map((p) => p.comm), ['sleep', 'sleep']);
  t.ok(byComm.some((p) => p.pid === State.Pid), 'init is among them');
  for (const p of byComm) t.same([p.effective, p.bounding], [['CAP_CHOWN'], ['CAP_CHOWN']], `pid ${p.pid}`);
  t.equal(facts.processesUnread, 0);
  const stopped = await run({ cmd: ['true'] });
  await docker.getContainer(stopped).wait();
  t.same((await readFacts(docker, stopped, new Map()))!.processes, [], 'a stopped container has none');
});

t.test('a pid that is not the container init gives no effective set, and never a throw', async (t) => {
  const id = await run();
  const real = (await docker.getContainer(id).inspect()) as ContainerInspect;
  // This test process is alive but lives in no container's cgroup: a reused pid looks like this.
  const reused = { ...real, State: { ...real.State, Pid: process.pid } };
  const fromReused = (await readFacts(fakeClient(reused), id, new Map()))!;
  t.equal(fromReused.capabilities.effective, null, 'reused pid');
  t.same(fromReused.processes, [], 'no cgroup of this container to list processes from');
  const vanished = { ...real, State: { ...real.State, Pid: 2 ** 22 + 1 } };
  t.equal((await readFacts(fakeClient(vanished), id, new Map()))!.capabilities.effective, null, 'vanished pid');
});

t.test('execs: running ones from the inspect, a finished one when an event names it, never another container\'s', async (t) => {
  const id = await run();
  const other = await run();
  const startExec = async (container: string, cmd: string[]) => {
    const exec = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: false, AttachStderr: false });
    await exec.start({ Detach: true });
    return exec.id;
  };
  const running = await startExec(id, ['sleep', '30']);
  const finished = await startExec(id, ['true']);
  const foreign = await startExec(other, ['true']);
  await new Promise((resolve) => setTimeout(resolve, 300));

  const plain = (await readFacts(docker, id, new Map()))!;
  t.same(plain.execs.map((e) => [e.id, e.command, e.running]), [[running, ['sleep', '30'], true]], 'ExecIDs lists the running one');
  const hinted = (await readFacts(docker, id, new Map(), {}, finished))!;
  t.same(hinted.execs.map((e) => [e.id, e.running]).sort(), [[finished, false], [running, true]].sort(), 'the finished exec an event named');
  const forged = (await readFacts(docker, id, new Map(), {}, foreign))!;
  t.same(forged.execs.map((e) => e.id), [running], "another container's exec is not taken for this one's");
  t.same((await readFacts(docker, id, new Map(), {}, 'f'.repeat(64)))!.execs.map((e) => e.id), [running], 'an unknown exec id is ignored');
});
