/**
 * Names are not provenance (issue 13): `docker tag` gives any image any name, so an image counts as
 * coming from a repository only when its RepoDigests hold that repository. Real images on the test
 * dockerd, real pushes to and pulls from a real registry on loopback, judged by the built CLI
 * (`dockwarden policy explain --json`, which evaluates exactly as the daemon does).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import t, { type Test } from 'tap';
import { docker, DOCKER_SOCKET, ensureTestDocker, runContainer } from '../helpers/docker.js';
import { commitCopy, explainJson, tag } from '../helpers/images.js';
import { pull, push, startRegistry, type TestRegistry } from '../helpers/registry.js';

const RUN_LABEL = 'dw-ev-img.run';
const RUN = String(process.pid);
/** The shipped demo policy: its `containers.exceptions` excuse Portainer from the socket check. */
const SHIPPED_POLICY = resolve(import.meta.dirname, '../../config/policy.yaml');

interface Report {
  ports: Array<{ port: string; decidedBy: string; allow: 'any' | string[] }>;
  image: { judgedAs: string; names: Array<{ name: string; allowed: boolean; reason: string | null; decidedBy: string }> };
  violations: Array<{ check: string; action: string; message: string }>;
}

let registry: TestRegistry;
let registryDir: string;
/** Built here (a commit of the test image): no repo digest anywhere. */
let localId: string;
/** Pushed to the registry, removed and pulled back: its RepoDigests hold `<registry>/dw-ev/app`. */
let pulledId: string;
let pulledDigest: string;
/** Images this file made, removed after (by id: every tag goes with them). */
const images: string[] = [];

const registryPattern = () => `${registry.host.split(':')[0]}:*`;

t.before(async () => {
  await ensureTestDocker();
  registryDir = mkdtempSync(join(tmpdir(), 'dw-ev-img-registry-'));
  registry = await startRegistry(registryDir);
  localId = await commitTestImage('local');
  const pushedId = await commitTestImage('pulled');
  await tag(pushedId, `${registry.host}/dw-ev/app:1`);
  await push(docker, `${registry.host}/dw-ev/app:1`);
  await docker.getImage(pushedId).remove({ force: true }); // gone from the engine: what follows is a real pull
  pulledDigest = await pull(docker, `${registry.host}/dw-ev/app:1`);
  pulledId = (await docker.getImage(`${registry.host}/dw-ev/app:1`).inspect()).Id;
  images.push(pulledId);
  t.equal(pulledId, pushedId, 'the pull brought back the same image');
});

t.teardown(async () => {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${RUN}`] } });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
  for (const id of images) await docker.getImage(id).remove({ force: true }).catch(() => {});
  await registry?.stop();
  if (registryDir) rmSync(registryDir, { recursive: true, force: true });
});

/** A copy of the test image (named `as`), removed with the rest. */
async function commitTestImage(what: string, as?: { repo: string; tag: string }): Promise<string> {
  const id = await commitCopy({ [RUN_LABEL]: RUN, 'dw-ev-img': what }, as);
  images.push(id);
  return id;
}

const repoDigestsOf = async (reference: string) => (await docker.getImage(reference).inspect()).RepoDigests ?? [];

let seq = 0;
async function run(image: string, options: { binds?: string[]; publish?: string[] } = {}): Promise<string> {
  const name = `dw-ev-img-${RUN}-${++seq}`;
  await runContainer({
    name,
    image,
    cmd: ['sleep', '3600'],
    labels: { [RUN_LABEL]: RUN },
    ...(options.publish && { publish: options.publish }),
    ...(options.binds && { hostConfig: { Binds: options.binds } }),
  });
  return name;
}

const explain = (t: Test, policy: string, container: string) => explainJson<Report>(t, policy, container);

const checks = (report: Report) => report.violations.map((v) => `${v.check}:${v.action}`);

const OFFICIAL_ONLY = `version: 1
images:
  default: deny
  action: kill
  rules:
    - match: official
`;

t.test('a local image tagged busybox:latest is not official: refused where only official images may run', async (t) => {
  await tag(localId, 'busybox:latest');
  t.same(await repoDigestsOf('busybox:latest'), [], 'the tag gave it no repo digest');
  const report = await explain(t, OFFICIAL_ONLY, await run('busybox:latest'));
  t.same(checks(report), ['image:kill']);
  t.equal(report.image.judgedAs, 'local');
  t.same(
    report.image.names.map((n) => [n.name, n.allowed, n.reason, n.decidedBy]),
    [['docker.io/library/busybox:latest', false, 'local-image', 'images.local']],
  );
});

t.test('an image pulled from one registry and tagged as official is judged as what it was pulled from', async (t) => {
  await tag(pulledId, 'busybox:dw-ev-retag');
  const container = await run('busybox:dw-ev-retag');
  const refused = await explain(t, OFFICIAL_ONLY, container);
  t.same(checks(refused), ['image:kill'], 'not official');
  t.equal(refused.image.judgedAs, 'repo digests');
  const names = refused.image.names.map((n) => n.name).sort();
  t.same(names, [`${registry.host}/dw-ev/app:1`, `${registry.host}/dw-ev/app@${pulledDigest}`].sort(), 'its pulled name and digest, not the retag');
  t.ok(refused.image.names.every((n) => n.reason === 'registry-not-allowed'));

  const fromThatRegistry = `${OFFICIAL_ONLY}    - match: "${registryPattern()}/dw-ev/**"\n`;
  t.same(checks(await explain(t, fromThatRegistry, container)), [], 'allowed where its real registry is');
});

t.test('an image in two repositories, run under an unproven name, must be allowed under both', async (t) => {
  await tag(pulledId, `${registry.host}/dw-ev/mirror:1`);
  await push(docker, `${registry.host}/dw-ev/mirror:1`);
  await tag(pulledId, 'busybox:dw-ev-retag');
  t.equal((await repoDigestsOf(pulledId)).length, 2, 'RepoDigests in dw-ev/app and dw-ev/mirror');
  const appOnly = `version: 1
images:
  default: deny
  rules:
    - match: "${registryPattern()}/dw-ev/app*"
`;
  const byMirror = await explain(t, appOnly, await run(`${registry.host}/dw-ev/mirror:1`));
  t.equal(byMirror.image.judgedAs, 'reference', 'a proven name is judged as itself');
  t.same(checks(byMirror), ['image:alert']);
  const byApp = await explain(t, appOnly, await run(`${registry.host}/dw-ev/app:1`));
  t.same(checks(byApp), [], 'the name it was pulled as is proven and allowed');
  const byRetag = await explain(t, appOnly, await run('busybox:dw-ev-retag'));
  t.same(checks(byRetag), ['image:alert'], 'an unproven name: every repository it is known in is judged');
  t.ok(byRetag.image.names.some((n) => n.name.startsWith(`${registry.host}/dw-ev/mirror`) && !n.allowed));
});

t.test('a local build that takes over a pulled tag has no provenance', async (t) => {
  const reference = `${registry.host}/dw-ev/rebuilt:1`;
  const pulled = await commitTestImage('rebuilt-original');
  await tag(pulled, reference);
  await push(docker, reference);
  const fromRegistry = `version: 1
images:
  default: deny
  rules:
    - match: "${registryPattern()}/dw-ev/**"
`;
  t.same(checks(await explain(t, fromRegistry, await run(reference))), [], 'the pushed image is allowed');
  await commitTestImage('rebuilt-local', { repo: `${registry.host}/dw-ev/rebuilt`, tag: '1' }); // `docker build -t` of the same name
  t.same(await repoDigestsOf(reference), [], 'the tag now names an image without repo digests');
  const report = await explain(t, fromRegistry, await run(reference));
  t.same(checks(report), ['image:alert']);
  t.same(report.image.names.map((n) => n.reason), ['local-image']);
  t.same(checks(await explain(t, `${fromRegistry}  local: allow\n`, await run(reference))), [], 'images.local: allow accepts it');
});

t.test('a local image tagged portainer/portainer-ce does not get the shipped policy’s socket exception', async (t) => {
  const shipped = readFileSync(SHIPPED_POLICY, 'utf8');
  // The test engine's socket is not among the default socket paths; everything else is the shipped text.
  const policy = shipped.replace('docker-socket: { action: kill }', `docker-socket: { action: kill, paths: [${DOCKER_SOCKET}] }`);
  t.not(policy, shipped, 'the shipped policy has the docker-socket check to extend');
  t.match(shipped, 'match: { image: "docker.io/portainer/portainer-ce:*" }', 'and the Portainer exception');
  await tag(localId, 'portainer/portainer-ce:dw-ev');
  const report = await explain(t, policy, await run('portainer/portainer-ce:dw-ev', { binds: [`${DOCKER_SOCKET}:/var/run/docker.sock`] }));
  t.same(checks(report), ['docker-socket:kill'], 'not excused; the demo policy allows local images (images.local: allow)');

  // The same exception for an image with real provenance still excuses it.
  await tag(pulledId, `${registry.host}/dw-ev/portainer:1`);
  await push(docker, `${registry.host}/dw-ev/portainer:1`);
  const excusing = policy.replace('docker.io/portainer/portainer-ce:*', `${registryPattern()}/dw-ev/portainer:*`);
  const excused = await explain(t, excusing, await run(`${registry.host}/dw-ev/portainer:1`, { binds: [`${DOCKER_SOCKET}:/var/run/docker.sock`] }));
  t.same(checks(excused), [], 'pushed to that repository: excused');
});

t.test('a port rule’s image selector is not matched by a retag', async (t) => {
  const policy = `version: 1
ports:
  default: deny
  rules:
    - name: web
      match: { image: "${registryPattern()}/dw-ev/web:*", port: 1-65535/tcp }
      allow: [any]
`;
  const web = `${registry.host}/dw-ev/web:1`;
  await tag(localId, web); // never pushed: the name claims a repository the image never came from
  const claimed = await explain(t, policy, await run(web, { publish: ['127.0.0.1::80'] }));
  t.same(claimed.ports.map((p) => [p.decidedBy, p.allow]), [['ports.default: deny', []]], 'closed to everyone');

  await tag(pulledId, web);
  await push(docker, web);
  const proven = await explain(t, policy, await run(web, { publish: ['127.0.0.1::80'] }));
  t.same(proven.ports.map((p) => [p.decidedBy, p.allow]), [['web', 'any']], 'pushed there: the rule decides');
});
