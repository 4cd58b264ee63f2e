import t from 'tap';
import { DOCKER_HOST, TEST_IMAGE, TEST_LABEL, docker, removeTestContainers, runContainer } from '../helpers/docker.js';

t.test('the private test daemon answers', async (t) => {
  const pong = await docker.ping();
  t.equal(String(pong), 'OK', `ping ${DOCKER_HOST}`);
  const info = (await docker.info()) as { Name?: string; DockerRootDir?: string };
  t.equal(info.DockerRootDir, '/var/lib/dw-test/docker', 'it is the private daemon, not the machine one');
});

t.test('the test image exists', async (t) => {
  const image = await docker.getImage(TEST_IMAGE).inspect();
  t.ok(image.Id, `${TEST_IMAGE} is ${image.Id}`);
});

t.test('runContainer starts a labelled container running sleep; removeTestContainers removes it', async (t) => {
  t.teardown(removeTestContainers);
  const id = await runContainer({ cmd: ['sleep', '300'] });
  const info = await docker.getContainer(id).inspect();
  t.equal(info.State.Running, true, 'running');
  t.equal(info.Config.Labels[TEST_LABEL], '1', 'labelled dw-test=1');
  t.match(info.Name, /^\/dw-test-/, 'unique test name');
  const top = await docker.getContainer(id).top();
  t.ok(
    top.Processes.some((p: string[]) => p.join(' ').includes('sleep 300')),
    'sleep is its process',
  );

  const other = await runContainer({ publish: ['80/tcp'] });
  t.not(other, id, 'a second container gets another id');
  const ports = (await docker.getContainer(other).inspect()).NetworkSettings.Ports['80/tcp'];
  t.ok(ports && ports.length > 0 && Number(ports[0]!.HostPort) > 0, 'publish maps a host port');

  await removeTestContainers();
  const left = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=1`] } });
  t.same(left.filter((c) => c.Id === id || c.Id === other), [], 'both removed');
  const gone = await docker.getContainer(id).inspect().then(() => null, (err: { statusCode?: number }) => err);
  t.equal(gone?.statusCode, 404, 'inspect says 404');
});
