import t, { type Test } from 'tap';
import { connectEngine, type DockerEngine } from '../../src/adapters/docker/engine.js';
import { hostFactsReader } from '../../src/app/host-facts.js';
import { KeyedQueue } from '../../src/app/keyed-queue.js';
import { Reconciler, type Enforcer } from '../../src/app/reconciler.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { docker, DOCKER_SOCKET, ensureTestDocker, runContainer } from '../helpers/docker.js';

const created: string[] = [];

/** Only this file's containers are removed: other test files share the engine. */
async function run(): Promise<string> {
  const id = await runContainer({ cmd: ['sleep', '3600'], hostConfig: { NetworkMode: 'none' } });
  created.push(id);
  return id;
}

t.before(ensureTestDocker);
t.teardown(() => Promise.all(created.map((id) => docker.getContainer(id).remove({ force: true }).catch(() => {}))));

const parsed = parsePolicy('version: 1\n', 'policy.yaml');
if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
const policy = parsed.policy;

const engine = connectEngine({ socketPath: DOCKER_SOCKET, timeoutMs: 30_000, sockets: () => [] });

/** A reconciler over `docker` (the real engine, its lists as given); `applied`: the containers judged, in order. */
function recording(t: Test, docker: DockerEngine, firstPage: number, onApplied: (count: number) => void = () => {}) {
  const applied: string[] = [];
  const recorder: Enforcer = {
    name: 'recorder',
    async apply({ facts }) {
      applied.push(facts.id);
      onApplied(applied.length);
    },
    async forget() {},
  };
  const queue = new KeyedQueue({ concurrency: 8, capacity: 100_000, onError: (id, kind, error) => t.fail(`${kind} ${id}: ${String(error)}`), onOverflow: () => t.fail('queue full') });
  return { applied, reconciler: new Reconciler(docker, queue, [recorder], () => policy, hostFactsReader({ relabel: null, veths: null }), { firstPage }) };
}

t.test('a reconcile judges the newest containers while the whole list is still coming, then every other, each once', async (t) => {
  const ours = [await run(), await run(), await run()];
  // The whole list is held until two containers are judged, which only the first page can give; or until the deadline.
  let release!: (by: string) => void;
  const released = new Promise<string>((resolve) => (release = resolve));
  const deadline = setTimeout(() => release('the deadline'), 20_000);
  const held: DockerEngine = {
    ...engine,
    async listContainerIds(limit) {
      const ids = await engine.listContainerIds(limit);
      if (limit === undefined) await released;
      return ids;
    },
  };
  const { applied, reconciler } = recording(t, held, 2, (count) => count === 2 && release('the first page judged'));
  await reconciler.reconcile();
  clearTimeout(deadline);
  t.equal(await released, 'the first page judged', 'the whole list was taken once the first page was judged');
  for (const id of ours) t.equal(applied.filter((a) => a === id).length, 1, `${id.slice(0, 12)} judged once`);
  t.equal(new Set(applied).size, applied.length, 'no container judged twice');
});

t.test('a first page the engine refuses costs nothing: the whole list decides', async (t) => {
  const id = await run();
  const refusing: DockerEngine = {
    ...engine,
    async listContainerIds(limit) {
      if (limit !== undefined) throw new Error('no such parameter');
      return [id];
    },
  };
  const { applied, reconciler } = recording(t, refusing, 1);
  await reconciler.reconcile();
  t.same(applied, [id], 'judged once, from the whole list');
});
