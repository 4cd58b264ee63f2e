/**
 * Image provenance against the real test dockerd and a real registry on loopback: images tagged
 * under each kind of name, pushed for real repo digests, containers created by name, by digest and
 * by image id, judged by the built CLI (`dockwarden policy explain --json`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { dockwarden } from '../helpers/cli.js';
import { docker, DOCKER_SOCKET, ensureTestDocker, runContainer, TEST_IMAGE } from '../helpers/docker.js';
import { push, startRegistry, type TestRegistry } from '../helpers/registry.js';

/** Everything this file makes carries this label (containers) or a dw-img- name (images), and is removed after. */
const RUN_LABEL = 'dw-img.run';
const RUN = String(process.pid);
const OFFICIAL = 'docker.io/library/dw-img-busybox:1';
const SOMEONE = 'docker.io/dw-img-someone/busybox:1';
const TEAM = 'registry.example.com:5000/dw-img-team/app:2';

interface ImageReport {
  reference: string;
  referencedBy: string;
  excusedBy: string | null;
  names: Array<{ name: string; matchingRules: string[]; decidedBy: string; allowed: boolean; reason: string | null; why: string }>;
}
interface Report {
  image: ImageReport;
  violations: Array<{ check: string; action: string; message: string }>;
}

let registry: TestRegistry;
let registryDir: string;
/** The test's own image (a commit of the test image, so the shared one gets no names of ours), and one with no names. */
let imageId: string;
let unnamedId: string;
let pinned: string;
let pushedTag: string;

t.before(async () => {
  await ensureTestDocker();
  registryDir = mkdtempSync(join(tmpdir(), 'dw-img-registry-'));
  registry = await startRegistry(registryDir);
  pushedTag = `${registry.host}/team/app:2`;
  imageId = await commitTestImage();
  unnamedId = await commitTestImage();
  for (const name of [OFFICIAL, SOMEONE, TEAM, pushedTag]) await tag(imageId, name);
  const digest = await push(docker, pushedTag);
  pinned = `${registry.host}/team/app@${digest}`;
});

t.teardown(async () => {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${RUN}`] } });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
  for (const id of [imageId, unnamedId]) if (id) await docker.getImage(id).remove({ force: true }).catch(() => {});
  await registry?.stop();
  if (registryDir) rmSync(registryDir, { recursive: true, force: true });
});

/** A new image with the test image's content; its id is unique (commit time), so removing it touches nothing shared. */
async function commitTestImage(): Promise<string> {
  const container = await docker.createContainer({ Image: TEST_IMAGE, Cmd: ['true'], Labels: { [RUN_LABEL]: RUN } });
  try {
    const { Id } = (await container.commit({ changes: 'LABEL dw-img=1' })) as { Id: string };
    return Id;
  } finally {
    await container.remove({ force: true });
  }
}

async function tag(id: string, reference: string): Promise<void> {
  const at = reference.lastIndexOf(':');
  await docker.getImage(id).tag({ repo: reference.slice(0, at), tag: reference.slice(at + 1) });
}

let seq = 0;
async function run(image: string, name = `dw-img-${RUN}-${++seq}`): Promise<string> {
  await runContainer({ name, image, cmd: ['sleep', '3600'], labels: { [RUN_LABEL]: RUN } });
  return name;
}

async function explain(t: Test, policy: string, container: string): Promise<Report> {
  const dir = t.testdir({ 'policy.yaml': policy });
  const result = await dockwarden(['policy', 'explain', container, '--json'], { DOCKWARDEN_POLICY: join(dir, 'policy.yaml'), DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET });
  t.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Report;
}

/** [name, allowed, reason, decidedBy] per judged name. */
const verdicts = (report: Report) => report.image.names.map((n) => [n.name, n.allowed, n.reason, n.decidedBy]);

const DENY = (host: string) => `version: 1
images:
  default: deny
  action: kill
  rules:
    - match: official
    - match: "registry.example.com:5000/**"
    - match: "${host.split(':')[0]}:*/team/**"
      require: { digest-pinned: true }
  exceptions:
    - container: "dw-img-excused-*"
`;

t.test('default deny: official, registry and pinned rules allow; the rest is refused with its reason', async (t) => {
  const policy = DENY(registry.host);
  const official = await explain(t, policy, await run(OFFICIAL));
  t.same(verdicts(official), [[OFFICIAL, true, null, 'images.rules[0]']]);
  t.same(official.violations, []);

  const someoneContainer = await run(SOMEONE);
  const someone = await explain(t, policy, someoneContainer);
  t.same(verdicts(someone), [[SOMEONE, false, 'unofficial-namespace', 'images.default']]);
  t.same(someone.violations.map((v) => [v.check, v.action]), [['image', 'kill']]);
  t.match(someone.violations[0]?.message, `image "${SOMEONE}" not allowed: "docker.io/dw-img-someone" is not the official namespace`);

  const team = await explain(t, policy, await run(TEAM));
  t.same(verdicts(team), [[TEAM, true, null, 'images.rules[1]']]);

  const byTag = await explain(t, policy, await run(pushedTag));
  t.same(verdicts(byTag), [[pushedTag, false, 'not-digest-pinned', 'images.rules[2]']]);

  const byDigest = await explain(t, policy, await run(pinned));
  t.same(verdicts(byDigest), [[pinned, true, null, 'images.rules[2]']], 'the digest the registry gave is among the RepoDigests');
  t.same(byDigest.violations, []);

  const unknownRegistry = await explain(t, policy.replace('registry.example.com:5000/**', 'registry.example.com:6000/**'), await run(TEAM));
  t.same(verdicts(unknownRegistry), [[TEAM, false, 'registry-not-allowed', 'images.default']]);

  const dir = t.testdir({ 'policy.yaml': policy });
  const text = await dockwarden(['policy', 'explain', someoneContainer], { DOCKWARDEN_POLICY: join(dir, 'policy.yaml'), DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET });
  t.match(text.stdout, `images     referenced by name "${SOMEONE}"\n  ${SOMEONE}: refused (unofficial-namespace): `, 'the text form says the same');
  t.match(text.stdout, /image \[medium\] → kill: image /);

  const excused = await explain(t, policy, await run(SOMEONE, `dw-img-excused-${RUN}`));
  t.equal(excused.image.excusedBy, 'images.exceptions[0]');
  t.same(excused.violations, []);
});

t.test('the most specific pattern decides; unmatched images fall to default allow', async (t) => {
  const policy = `version: 1
images:
  default: allow
  rules:
    - match: "docker.io/**"
      require: { digest-pinned: true }
    - match: official
`;
  const official = await explain(t, policy, await run(OFFICIAL));
  t.same(official.image.names[0]?.matchingRules, ['images.rules[1] (docker.io/library/*)', 'images.rules[0] (docker.io/**)']);
  t.same(verdicts(official), [[OFFICIAL, true, null, 'images.rules[1]']]);
  const someone = await explain(t, policy, await run(SOMEONE));
  t.same(verdicts(someone), [[SOMEONE, false, 'not-digest-pinned', 'images.rules[0]']]);
  const team = await explain(t, policy, await run(TEAM));
  t.same(verdicts(team), [[TEAM, true, null, 'images.default']]);
  t.same(team.violations, []);
});

t.test('referenced by image id: every repo tag and digest of the image is judged', async (t) => {
  const everyName = `version: 1
images:
  default: deny
  rules:
    - match: official
    - match: "docker.io/dw-img-someone/*"
    - match: "registry.example.com:5000/**"
    - match: "127.0.0.1:*/team/**"
      require: { digest-pinned: true }
`;
  for (const reference of [imageId, imageId.slice('sha256:'.length, 'sha256:'.length + 12)]) {
    const allowed = await explain(t, everyName, await run(reference));
    t.equal(allowed.image.referencedBy, 'image id', reference);
    t.same(allowed.image.names.map((n) => n.name).sort(), [OFFICIAL, SOMEONE, TEAM, `${registry.host}/team/app:2`, pinned].sort());
    t.ok(allowed.image.names.every((n) => n.allowed), 'the pushed tag counts as pinned: the id fixes the content and the repository has its digest');
    t.same(allowed.violations, []);

    const refused = await explain(t, DENY(registry.host), await run(reference));
    t.same(refused.violations.map((v) => v.check), ['image']);
    t.match(refused.violations[0]?.message, `image referenced by image id "${reference}", as "${SOMEONE}", not allowed`);
  }
});

t.test('an image with no names, run by id or short id, is judged by images.default (never as docker.io/library/<hex>)', async (t) => {
  for (const reference of [unnamedId, unnamedId.slice('sha256:'.length, 'sha256:'.length + 12)]) {
    const report = await explain(t, DENY(registry.host), await run(reference));
    t.same(verdicts(report), [[unnamedId, false, 'unnamed-image', 'images.default']], reference);
    t.match(report.violations[0]?.message, 'referenced by image id');
  }
});

// Last: it takes the pushed digest's reference away from the image.
t.test('a digest reference that is no longer among the image’s repo digests is refused', async (t) => {
  const container = await run(pinned);
  t.same(verdicts(await explain(t, DENY(registry.host), container)), [[pinned, true, null, 'images.rules[2]']]);
  await docker.getImage(pinned).remove({ force: true }); // `docker rmi -f repo@digest`: untags only, the image has other names
  const report = await explain(t, DENY(registry.host), container);
  t.same(verdicts(report), [[pinned, false, 'digest-not-in-repo-digests', 'images.rules[2]']]);
  t.match(report.violations[0]?.message, "is not among the image's repo digests");
});
