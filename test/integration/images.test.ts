/**
 * Image provenance against the real test dockerd and a real registry on loopback: an image pushed
 * under several names for real repo digests (only those count: a local tag proves nothing), containers
 * created by name, by digest and by image id, judged by the built CLI (`dockwarden policy explain --json`).
 * Docker Hub provenance (`official`, namespaces) cannot be made here without Hub: test/unit/image-check.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { dockwarden } from '../helpers/cli.js';
import { docker, DOCKER_SOCKET, ensureTestDocker, runContainer } from '../helpers/docker.js';
import { commitCopy, explainJson, tag } from '../helpers/images.js';
import { push, startRegistry, type TestRegistry } from '../helpers/registry.js';

/** Everything this file makes carries this label (containers) or is removed by id (images). */
const RUN_LABEL = 'dw-img.run';
const RUN = String(process.pid);
/** Local tags in the official namespace, of a local image and of the pushed one: neither proves anything. */
const LOCAL_OFFICIAL = 'docker.io/library/dw-img-busybox:1';
const RETAGGED = 'docker.io/library/dw-img-retag:1';

interface ImageReport {
  reference: string;
  referencedBy: string;
  judgedAs: string;
  excusedBy: string | null;
  names: Array<{ name: string; matchingRules: string[]; decidedBy: string; allowed: boolean; reason: string | null; why: string }>;
}
interface Report {
  image: ImageReport;
  violations: Array<{ check: string; action: string; message: string }>;
}

let registry: TestRegistry;
let registryDir: string;
/** The test's own images (commits of the test image, so the shared one gets no names of ours): pushed, local, and without names. */
let imageId: string;
let localId: string;
let unnamedId: string;
/** Names the image was pushed as (real repo digests), all in the loopback registry, the last one spelt `localhost`. */
let open: string;
let someone: string;
let pushedTag: string;
let pinned: string;
let otherSpelling: string;
let digest: string;
/** Every image this file committed, removed by id after (with all their names). */
const made: string[] = [];

t.before(async () => {
  await ensureTestDocker();
  registryDir = mkdtempSync(join(tmpdir(), 'dw-img-registry-'));
  registry = await startRegistry(registryDir);
  open = `${registry.host}/open/app:1`;
  someone = `${registry.host}/someone/busybox:1`;
  pushedTag = `${registry.host}/team/app:2`;
  otherSpelling = `localhost:${registry.host.split(':')[1]}/team/web:2`;
  imageId = await commitTestImage();
  localId = await commitTestImage();
  unnamedId = await commitTestImage();
  await tag(localId, LOCAL_OFFICIAL);
  await tag(imageId, RETAGGED);
  for (const name of [open, someone, pushedTag, otherSpelling]) {
    await tag(imageId, name);
    digest = await push(docker, name); // the same content: the same manifest digest in every repository
  }
  pinned = `${registry.host}/team/app@${digest}`;
});

t.teardown(async () => {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${RUN}`] } });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
  for (const id of made) await docker.getImage(id).remove({ force: true }).catch(() => {});
  await registry?.stop();
  if (registryDir) rmSync(registryDir, { recursive: true, force: true });
});

/** A copy of the test image, removed with the rest. */
async function commitTestImage(): Promise<string> {
  const id = await commitCopy({ [RUN_LABEL]: RUN });
  made.push(id);
  return id;
}

let seq = 0;
async function run(image: string, name = `dw-img-${RUN}-${++seq}`): Promise<string> {
  await runContainer({ name, image, cmd: ['sleep', '3600'], labels: { [RUN_LABEL]: RUN } });
  return name;
}

const explain = (t: Test, policy: string, container: string) => explainJson<Report>(t, policy, container);

/** [name, allowed, reason, decidedBy] per judged name. */
const verdicts = (report: Report) => report.image.names.map((n) => [n.name, n.allowed, n.reason, n.decidedBy]);

const DENY = `version: 1
images:
  default: deny
  action: kill
  rules:
    - match: official
    - match: "127.0.0.1:*/open/**"
    - match: "127.0.0.1:*/team/**"
      require: { digest-pinned: true }
  exceptions:
    - container: "dw-img-excused-*"
`;

t.test('default deny: official, registry and pinned rules allow what was pushed there; the rest is refused with its reason', async (t) => {
  const localOfficial = await explain(t, DENY, await run(LOCAL_OFFICIAL));
  t.equal(localOfficial.image.judgedAs, 'local');
  t.same(verdicts(localOfficial), [[LOCAL_OFFICIAL, false, 'local-image', 'images.local']], 'a local tag in docker.io/library is not official');
  t.same(localOfficial.violations.map((v) => [v.check, v.action]), [['image', 'kill']]);
  const retagged = await explain(t, DENY, await run(RETAGGED));
  t.equal(retagged.image.judgedAs, 'repo digests', 'a pushed image tagged as official is judged as what it was pushed as');
  t.notOk(retagged.image.names.some((n) => n.name === RETAGGED));
  t.same(retagged.violations.map((v) => [v.check, v.action]), [['image', 'kill']]);

  const someoneContainer = await run(someone);
  const refused = await explain(t, DENY, someoneContainer);
  t.equal(refused.image.judgedAs, 'reference', 'pushed there: the name is proven');
  t.same(verdicts(refused), [[someone, false, 'no-matching-rule', 'images.default']]);
  t.same(refused.violations.map((v) => [v.check, v.action]), [['image', 'kill']]);
  t.match(refused.violations[0]?.message, `image "${someone}" not allowed: no rule matches it`);

  const allowed = await explain(t, DENY, await run(open));
  t.same(verdicts(allowed), [[open, true, null, 'images.rules[1]']]);

  const byTag = await explain(t, DENY, await run(pushedTag));
  t.same(verdicts(byTag), [[pushedTag, false, 'not-digest-pinned', 'images.rules[2]']]);

  const byDigest = await explain(t, DENY, await run(pinned));
  t.same(verdicts(byDigest), [[pinned, true, null, 'images.rules[2]']], 'the digest the registry gave is among the RepoDigests');
  t.same(byDigest.violations, []);

  const unknownRegistry = await explain(t, DENY, await run(otherSpelling));
  t.same(verdicts(unknownRegistry), [[otherSpelling, false, 'registry-not-allowed', 'images.default']], 'localhost:PORT is another registry to a pattern than 127.0.0.1:*');

  const dir = t.testdir({ 'policy.yaml': DENY });
  const text = await dockwarden(['policy', 'explain', someoneContainer], { DOCKWARDEN_POLICY: join(dir, 'policy.yaml'), DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET });
  t.match(text.stdout, `images     referenced by name "${someone}"\n  ${someone}: refused (no-matching-rule): `, 'the text form says the same');
  t.match(text.stdout, /image \[medium\] → kill: image /);

  const excused = await explain(t, DENY, await run(someone, `dw-img-excused-${RUN}`));
  t.equal(excused.image.excusedBy, 'images.exceptions[0]');
  t.same(excused.violations, []);
});

t.test('the most specific pattern decides; unmatched images fall to default allow, local ones to images.local', async (t) => {
  const policy = `version: 1
images:
  default: allow
  rules:
    - match: "127.0.0.1:*/**"
      require: { digest-pinned: true }
    - match: "${registry.host}/open/*"
`;
  const specific = await explain(t, policy, await run(open));
  t.same(specific.image.names[0]?.matchingRules, [`images.rules[1] (${registry.host}/open/*)`, 'images.rules[0] (127.0.0.1:*/**)']);
  t.same(verdicts(specific), [[open, true, null, 'images.rules[1]']]);
  const broad = await explain(t, policy, await run(someone));
  t.same(verdicts(broad), [[someone, false, 'not-digest-pinned', 'images.rules[0]']]);
  const unmatched = await explain(t, policy, await run(otherSpelling));
  t.same(verdicts(unmatched), [[otherSpelling, true, null, 'images.default']]);
  t.same(unmatched.violations, []);
  const local = await explain(t, `${policy}  local: deny\n`, await run(LOCAL_OFFICIAL));
  t.same(verdicts(local), [[LOCAL_OFFICIAL, false, 'local-image', 'images.local']], 'images.local: deny under default allow');
});

t.test('referenced by image id: every name the repo digests prove is judged', async (t) => {
  const everyName = `version: 1
images:
  default: deny
  rules:
    - match: "127.0.0.1:*/**"
    - match: "localhost:*/**"
`;
  const repoDigestNames = [open, someone, pushedTag, otherSpelling].map((name) => `${name.slice(0, name.lastIndexOf(':'))}@${digest}`);
  for (const reference of [imageId, imageId.slice('sha256:'.length, 'sha256:'.length + 12)]) {
    const allowed = await explain(t, everyName, await run(reference));
    t.equal(allowed.image.referencedBy, 'image id', reference);
    t.same(allowed.image.names.map((n) => n.name).sort(), [open, someone, pushedTag, otherSpelling, ...repoDigestNames].sort(), `not ${RETAGGED}: no repo digest backs it`);
    t.ok(allowed.image.names.every((n) => n.allowed));
    t.same(allowed.violations, []);

    const refused = await explain(t, DENY, await run(reference));
    t.same(refused.violations.map((v) => v.check), ['image']);
    const as = /^image referenced by image id "([^"]+)", as "([^"]+)", not allowed: /.exec(refused.violations[0]?.message ?? '');
    t.equal(as?.[1], reference);
    t.ok(refused.image.names.some((n) => n.name === as?.[2] && !n.allowed), 'the message names a refused name');
  }
});

t.test('an image with no names, run by id or short id, is a local image (never docker.io/library/<hex>)', async (t) => {
  for (const reference of [unnamedId, unnamedId.slice('sha256:'.length, 'sha256:'.length + 12)]) {
    const report = await explain(t, DENY, await run(reference));
    t.same(verdicts(report), [[unnamedId, false, 'local-image', 'images.local']], reference);
    t.match(report.violations[0]?.message, 'referenced by image id');
  }
});

t.test('a digest reference whose digest the image no longer has proves nothing', async (t) => {
  const solo = await commitTestImage();
  const soloTag = `${registry.host}/team/solo:1`;
  await tag(solo, soloTag);
  const soloPinned = `${registry.host}/team/solo@${await push(docker, soloTag)}`;
  const container = await run(soloPinned);
  t.same(verdicts(await explain(t, DENY, container)), [[soloPinned, true, null, 'images.rules[2]']]);
  await docker.getImage(soloPinned).remove({ force: true }); // `docker rmi -f repo@digest`: untags only, the image keeps its tag
  t.same((await docker.getImage(solo).inspect()).RepoDigests, [], 'no repo digest left');
  const report = await explain(t, DENY, container);
  t.same(verdicts(report), [[soloPinned, false, 'local-image', 'images.local']], 'the image is local now: its tag proves nothing');
});
