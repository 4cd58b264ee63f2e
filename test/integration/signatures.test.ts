/**
 * Cosign image signatures (issue 17), keyed and offline: real images pushed by the test dockerd to a
 * real registry on loopback, signed by the cosign stand-in (test/helpers/cosign-stand-in.ts: cosign's
 * formats, `openssl` signatures), judged by the built CLI (`policy explain --json`) and by a real
 * daemon, which kills at the create event what it refuses and keeps its verdicts across a restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { loadCosignKey, generateKeyPair, sign } from '../helpers/cosign-stand-in.js';
import { judged, spawnDaemon, type LogLine } from '../helpers/daemon.js';
import { docker, DOCKER_SOCKET, ensureTestDocker, runContainer } from '../helpers/docker.js';
import { commitCopy, explainJson, tag } from '../helpers/images.js';
import { pull, push, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startGateDockerd } from '../helpers/gate-dockerd.js';
import { dockwarden } from '../helpers/cli.js';

const RUN_LABEL = 'dw-sig.run';
const RUN = String(process.pid);

interface Report {
  image: { judgedAs: string; names: Array<{ name: string; allowed: boolean; reason: string | null; why: string; decidedBy: string }> };
  violations: Array<{ check: string; action: string; message: string }>;
}

let registry: TestRegistry;
let registryDir: string;
let keyDir: string;
let right: string;
let other: string;
/** Every image this file committed, removed by id after (with all their names). */
const made: string[] = [];
/** Repository → the pushed reference (`host/<repo>/app:1`) and its manifest digest. */
const pushed = new Map<string, { reference: string; digest: string }>();
let localTag: string;

async function pushCopy(repo: string): Promise<{ reference: string; digest: string }> {
  const id = await commitCopy({ [RUN_LABEL]: RUN });
  made.push(id);
  const reference = `${registry.host}/${repo}/app:1`;
  await tag(id, reference);
  const entry = { reference, digest: await push(docker, reference) };
  pushed.set(repo, entry);
  return entry;
}

t.before(async () => {
  await ensureTestDocker();
  registryDir = mkdtempSync(join(tmpdir(), 'dw-sig-registry-'));
  keyDir = mkdtempSync(join(tmpdir(), 'dw-sig-keys-'));
  registry = await startRegistry(registryDir);
  const rightPair = await generateKeyPair(keyDir, 'right', 'right-password');
  const otherPair = await generateKeyPair(keyDir, 'other', 'other-password');
  right = loadCosignKey(rightPair.privatePath, rightPair.password);
  other = loadCosignKey(otherPair.privatePath, otherPair.password);
  const signed = await pushCopy('signed');
  await sign(registry.host, 'signed/app', signed.digest, right);
  const byOther = await pushCopy('other-key');
  await sign(registry.host, 'other-key/app', byOther.digest, other);
  const tampered = await pushCopy('tampered');
  await sign(registry.host, 'tampered/app', tampered.digest, right, { tamper: (p) => Buffer.from(p.toString().replace('"optional":null', '"optional":{"x":"y"}')) });
  const wrongDigest = await pushCopy('wrong-digest');
  await sign(registry.host, 'wrong-digest/app', wrongDigest.digest, right, { signedDigest: signed.digest });
  const wrongRepo = await pushCopy('wrong-repo');
  await sign(registry.host, 'wrong-repo/app', wrongRepo.digest, right, { dockerReference: `${registry.host}/signed/app` });
  await pushCopy('unsigned');
  // A second signature by another key beside a good one: one valid signature is enough.
  const twice = await pushCopy('twice');
  await sign(registry.host, 'twice/app', twice.digest, other);
  await sign(registry.host, 'twice/app', twice.digest, right);
  // Signed, but first run only once the registry is down: no verdict for it is kept anywhere.
  const late = await pushCopy('late');
  await sign(registry.host, 'late/app', late.digest, right);
  const localId = await commitCopy({ [RUN_LABEL]: RUN });
  made.push(localId);
  localTag = `${registry.host}/signed/app:local`;
  await tag(localId, localTag);
});

t.teardown(async () => {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${RUN}`] } });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
  for (const id of made) await docker.getImage(id).remove({ force: true }).catch(() => {});
  await registry?.stop();
  for (const dir of [registryDir, keyDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

const policy = (onUnreachable = 'deny') => `version: 1
images:
  keys:
    release: ${join(keyDir, 'right.pub')}
  insecure-registries: ["${registry.host}"]
  action: kill
  rules:
    - match: "127.0.0.1:*/**"
      require: { signed-by: [release], on-unreachable: ${onUnreachable} }
`;

let seq = 0;
async function create(image: string): Promise<string> {
  const name = `dw-sig-${RUN}-${++seq}`;
  await runContainer({ name, image, cmd: ['sleep', '3600'], labels: { [RUN_LABEL]: RUN } });
  return name;
}

/** [allowed, reason] of the one judged name. */
async function verdict(t: Test, image: string, text = policy()): Promise<[boolean, string | null, string]> {
  const report = await explainJson<Report>(t, text, await create(image));
  t.equal(report.image.names.length, 1);
  const name = report.image.names[0]!;
  t.same(report.violations.map((v) => v.check), name.allowed ? [] : ['image']);
  return [name.allowed, name.reason, name.why];
}

t.test('explain: a signature by the right key allows; every other case is refused with its reason', async (t) => {
  const reference = (repo: string) => pushed.get(repo)!.reference;
  const [allowed, reason, why] = await verdict(t, reference('signed'));
  t.same([allowed, reason], [true, null], why);
  t.match(why, /signed by "release"/);
  t.same((await verdict(t, reference('twice'))).slice(0, 2), [true, null], 'one good signature among others is enough');
  t.same((await verdict(t, reference('other-key'))).slice(0, 2), [false, 'signed-by-unknown-key']);
  t.same((await verdict(t, reference('tampered'))).slice(0, 2), [false, 'signed-by-unknown-key'], 'the payload changed after signing verifies with no key');
  t.same((await verdict(t, reference('wrong-digest'))).slice(0, 2), [false, 'signature-for-other-digest']);
  const [, wrongRepo, wrongRepoWhy] = await verdict(t, reference('wrong-repo'));
  t.equal(wrongRepo, 'signature-for-other-digest');
  t.match(wrongRepoWhy, /another repository/);
  t.same((await verdict(t, reference('unsigned'))).slice(0, 2), [false, 'unsigned']);
  t.same((await verdict(t, localTag)).slice(0, 2), [false, 'no-repo-digest'], 'a local tag of a signed name proves nothing');
});

t.test('gate: an unsigned image is refused at create, with its reason; a signed one is created', async (t) => {
  const gateSocket = join(mkdtempSync(join(tmpdir(), 'dw-sig-gate-')), 'gate.sock');
  const daemon = spawnDaemon({ policy: policy(), dockerSocket: '/run/dw-gate/docker.sock', extraConfig: `firewall:\n  backend: nftables\ngate:\n  enabled: true\n  socket: ${gateSocket}` });
  t.teardown(() => daemon.stop('SIGKILL'));
  await daemon.waitForLog((l) => l.msg === 'authorization gate serving');
  const gated = await startGateDockerd(gateSocket);
  const [signed, unsigned] = [pushed.get('signed')!.reference, pushed.get('unsigned')!.reference];
  t.teardown(async () => {
    // While the gate still answers: without it dockerd holds every request.
    const left = await gated.docker.listContainers({ all: true, filters: { label: [`${RUN_LABEL}=${RUN}`] } }).catch(() => []);
    await Promise.all(left.map((c) => gated.docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
    for (const reference of [signed, unsigned]) await gated.docker.getImage(reference).remove({ force: true }).catch(() => {});
    await daemon.stop('SIGKILL');
    await gated.stop();
    await dockwarden(['firewall', 'remove'], { DOCKWARDEN_FIREWALL_BACKEND: 'nftables' });
  });
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  // Pulled into the gated engine: real repo digests there.
  await pull(gated.docker, signed);
  await pull(gated.docker, unsigned);
  const create = (image: string) => gated.docker.createContainer({ Image: image, Cmd: ['sleep', '60'], Labels: { [RUN_LABEL]: RUN } });
  const error = (await create(unsigned).then(() => null, (e: unknown) => e)) as { statusCode?: number; message?: string } | null;
  t.equal(error?.statusCode, 403);
  t.match(error?.message, /image \(unsigned, decided by images\.rules\[0\]\)/);
  const allowed = await create(signed);
  t.ok(allowed.id, 'the signed image is created');
});

const killed = (name: string) => (l: LogLine) => l.msg === 'container killed' && (l.container as { name?: string } | undefined)?.name === name;

t.test('daemon: refused at create (killed), verdicts kept across a restart with the registry down; unverifiable fails closed unless allowed', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'dw-sig-state-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const first = spawnDaemon({ policy: policy(), dockerSocket: DOCKER_SOCKET, stateDir });
  t.teardown(() => first.stop());
  await first.waitForLog((l) => l.msg === 'reconciled');
  const unsigned = await create(pushed.get('unsigned')!.reference);
  await first.waitForLog(killed(unsigned));
  const signedName = await create(pushed.get('signed')!.reference);
  const signedId = (await docker.getContainer(signedName).inspect()).Id;
  const line = await first.waitForLog(judged(signedId));
  t.same(line.violations, [], 'the signed image runs');
  await first.stop();

  // No registry: only the kept verdict can allow the signed image now.
  await registry.stop();
  const second = spawnDaemon({ policy: policy(), dockerSocket: DOCKER_SOCKET, stateDir });
  t.teardown(() => second.stop());
  const again = await second.waitForLog(judged(signedId));
  t.same(again.violations, [], 'judged on the verdict kept in the state dir');
  t.ok((await docker.getContainer(signedName).inspect()).State.Running, 'not killed');
  const late = await create(pushed.get('late')!.reference);
  await second.waitForLog(killed(late));
  await second.stop();

  const [allowed, reason, why] = await verdict(t, pushed.get('late')!.reference);
  t.same([allowed, reason], [false, 'signature-unverifiable'], why);
  const [allowedAnyway, , allowWhy] = await verdict(t, pushed.get('late')!.reference, policy('allow'));
  t.ok(allowedAnyway, 'on-unreachable: allow');
  t.match(allowWhy, /on-unreachable: allow/);
});
