import t from 'tap';
import type { MountFacts } from '../../src/domain/facts.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { FALLBACK_PRIVATE_TYPE_LEVEL, isConfined, planRelabel, SHARED_TYPE_LEVEL, typeLevelOf, type RelabelHost } from '../../src/domain/selinux/plan.js';
import { storageDirectoriesFor } from '../../src/domain/volumes/storage.js';
import { makeFacts } from '../helpers/facts.js';

function policy(relabel: string, roots = '[/srv/containers, /var/lib/docker/volumes]'): Policy {
  const result = parsePolicy(`version: 1\nvolumes:\n  selinux:\n    relabel: ${relabel}\n    roots: ${roots}\n`, 'policy.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.policy;
}

const bind = (realSource: string, source = realSource): MountFacts => ({
  type: 'bind', source, realSource, destination: '/data', rw: true, mode: '', name: '', driver: '', hostPaths: [realSource], backing: null, device: '', unresolved: null,
});
const volume = (name: string, driver = 'local'): MountFacts => ({
  type: 'volume', source: `/var/lib/docker/volumes/${name}/_data`, realSource: `/var/lib/docker/volumes/${name}/_data`, destination: '/v', rw: true, mode: 'z', name, driver,
  hostPaths: [`/var/lib/docker/volumes/${name}/_data`], backing: null, device: '', unresolved: null,
});

const HOST: Omit<RelabelHost, 'roots'> = { forced: false, dataRoot: '/var/lib/docker', homes: ['/root', '/home/alice', '/srv/containers/bob', '/'], othersMounts: [] };
const MOUNT_LABEL = 'system_u:object_r:container_file_t:s0:c123,c456';
const confined = { processLabel: 'system_u:system_r:container_t:s0:c123,c456', mountLabel: MOUNT_LABEL };

const plan = (p: Policy, mounts: MountFacts[], host: Partial<RelabelHost> = {}, facts: Parameters<typeof makeFacts>[0] = {}) =>
  planRelabel(p.volumes, makeFacts({ ...confined, mounts, ...facts }), { ...HOST, roots: p.volumes.selinux.roots, ...host });
const reasons = (result: ReturnType<typeof plan>) => result.violations.map((v) => (v.details as { reason: string }).reason);

t.test('shared: container_file_t:s0 on binds and local volumes under the roots', async (t) => {
  const result = plan(policy('shared'), [bind('/srv/containers/web'), volume('db'), { ...bind(''), type: 'tmpfs' }]);
  t.equal(result.skipped, null);
  t.same(result.ops.map((op) => [op.path, op.typeLevel, op.fallback]), [
    ['/srv/containers/web', SHARED_TYPE_LEVEL, false],
    ['/var/lib/docker/volumes/db/_data', SHARED_TYPE_LEVEL, false],
  ]);
  t.same(result.violations, []);
});

t.test('private: the type and level of the exact MountLabel', async (t) => {
  const result = plan(policy('private'), [bind('/srv/containers/web')]);
  t.same(result.ops.map((op) => op.typeLevel), ['container_file_t:s0:c123,c456']);
});

t.test('the real path decides, not the path as written', async (t) => {
  const result = plan(policy('shared'), [bind('/etc', '/srv/containers/link-to-etc')]);
  t.same(result.ops, []);
  t.same(reasons(result), ['system-path']);
  t.match(result.violations[0], { check: 'selinux-relabel', action: 'alert', severity: 'high', details: { source: '/srv/containers/link-to-etc', realSource: '/etc' } });
});

t.test('refused: system directories, homes, the data root, outside the roots', async (t) => {
  const p = policy('shared', '[/srv/containers, /data]');
  const cases: Array<[string, string]> = [
    ['/', 'system-path'],
    ['/var/lib', 'system-path'],
    ['/usr', 'system-path'],
    ['/home/carol', 'home'],
    ['/root', 'system-path'],
    ['/srv/containers/bob', 'home'],
    ['/var/lib/docker', 'docker-data-root'],
    ['/var/lib/docker/overlay2', 'docker-data-root'],
    ['/data', 'docker-data-root'],
    ['/data/docker/image', 'docker-data-root'],
    ['/opt/app', 'outside-roots'],
    ['/srv/containersX', 'outside-roots'],
  ];
  for (const [path, reason] of cases) {
    const result = plan(p, [bind(path)], path.startsWith('/data') ? { dataRoot: '/data/docker' } : {});
    t.same([result.ops.length, reasons(result)], [0, [reason]], path);
  }
});

t.test("a path holding a user's home is refused; one below a home under a root is not", async (t) => {
  t.same(reasons(plan(policy('shared'), [bind('/srv/containers')], { homes: ['/srv/containers/bob'] })), ['home']);
  t.same(plan(policy('shared'), [bind('/srv/containers/bob/data')]).ops.length, 1);
});

t.test('volume _data directories under the data root may be relabelled; nothing else there', async (t) => {
  const p = policy('shared', '[/var/lib/docker]');
  t.same(plan(p, [volume('db')]).ops.map((op) => op.path), ['/var/lib/docker/volumes/db/_data']);
  t.same(plan(p, [bind('/var/lib/docker/volumes/db/_data/sub')]).ops.length, 1);
  t.same(reasons(plan(p, [bind('/var/lib/docker/volumes/db')])), ['docker-data-root']);
  t.same(reasons(plan(p, [bind('/var/lib/docker/volumes')])), ['docker-data-root']);
  t.same(reasons(plan(p, [bind('/var/lib/docker/containers/x')])), ['docker-data-root']);
});

t.test('roots are those the host resolved; one that resolved to a system directory is dropped', async (t) => {
  t.same(plan(policy('shared', '[/srv/alias]'), [bind('/data/x/web')], { roots: ['/data/x'] }).ops.length, 1);
  t.same(reasons(plan(policy('shared', '[/srv/alias]'), [bind('/usr/share/doc')], { roots: ['/usr'] })), ['outside-roots']);
});

t.test('a volume is judged by what its driver options mount, never by its _data alone', async (t) => {
  const backed = (backing: MountFacts['backing'], device: string, hostPaths: string[], unresolved: string | null = null): MountFacts => ({
    ...volume('v'),
    backing,
    device,
    hostPaths,
    unresolved,
  });
  const result = plan(policy('shared'), [
    backed('bind', '/etc', ['/etc']),
    backed('bind', '/', ['/']),
    backed('bind', '/var/lib/docker/volumes/v/_data', ['/var/lib/docker/volumes/v/_data', '/etc'], null),
    backed('device', '/dev/sdb1', ['/dev/sdb1']),
    backed('network', ':/export', []),
    backed(null, '', ['/var/lib/docker/volumes/v/_data'], 'the source did not resolve in time'),
    backed('bind', '/srv/containers/shared', ['/srv/containers/shared']),
  ]);
  t.same(reasons(result), ['system-path', 'system-path', 'system-path', 'mounted-device', 'mounted-device', 'unresolved']);
  t.same(
    result.ops.map((op) => op.path),
    ['/srv/containers/shared'],
    'a bind volume under the roots: its device is what gets walked',
  );
  const alias = plan(policy('shared'), [{ ...bind('/srv/containers/web'), hostPaths: ['/data/web', '/srv/containers/web'] }]);
  t.same(alias.ops.map((op) => op.path), ['/srv/containers/web'], 'another host path of the same files outside the roots (a root that is a bind mount) is no refusal');
});

t.test('volumes of other drivers have no local path to label', async (t) => {
  t.same(plan(policy('shared'), [volume('nfs', 'rexray')]), { skipped: null, ops: [], violations: [] });
});

t.test('private on a path another running container mounts is refused; shared is not', async (t) => {
  for (const other of ['/srv/containers/web', '/srv/containers', '/srv/containers/web/sub']) {
    t.same(reasons(plan(policy('private'), [bind('/srv/containers/web')], { othersMounts: [other] })), ['shared-private'], other);
    t.same(plan(policy('shared'), [bind('/srv/containers/web')], { othersMounts: [other] }).ops.length, 1, other);
  }
  t.same(plan(policy('private'), [bind('/srv/containers/web')], { othersMounts: ['/srv/containers/webx'] }).ops.length, 1);
});

t.test('private without a MountLabel falls back to the fixed level and says so', async (t) => {
  const result = plan(policy('private'), [bind('/srv/containers/web')], { forced: true }, { mountLabel: '', processLabel: '' });
  t.same(result.ops.map((op) => [op.typeLevel, op.fallback]), [[FALLBACK_PRIVATE_TYPE_LEVEL, true]]);
});

t.test('a MountLabel that is not a label is refused, never written', async (t) => {
  const result = plan(policy('private'), [bind('/srv/containers/web')], {}, { mountLabel: 'system_u:object_r:x_t:s0:c1;rm -rf /' });
  t.same([result.ops.length, reasons(result)], [0, ['bad-mount-label']]);
});

t.test('off, privileged, label=disable and unlabelled containers are left alone', async (t) => {
  t.same(plan(policy('off'), [bind('/etc')]), { skipped: 'off', ops: [], violations: [] });
  t.same(plan(policy('shared'), [bind('/etc')], {}, { privileged: true }), { skipped: 'unconfined', ops: [], violations: [] });
  t.same(plan(policy('shared'), [bind('/etc')], {}, { processLabel: '' }).skipped, 'unconfined');
  const disabled = makeFacts({ ...confined, security: { ...makeFacts().security, labelOptions: ['disable'] } });
  t.equal(isConfined(disabled, true), false);
});

t.test('forced mode: a non-privileged container without labels counts as confined', async (t) => {
  const unlabelled = makeFacts({ processLabel: '', mountLabel: '' });
  t.equal(isConfined(unlabelled, false), false);
  t.equal(isConfined(unlabelled, true), true);
  t.equal(isConfined(makeFacts({ privileged: true }), true), false);
});

t.test('typeLevelOf reads user:role:type:level with MLS ranges and categories', async (t) => {
  t.equal(typeLevelOf(MOUNT_LABEL), 'container_file_t:s0:c123,c456');
  t.equal(typeLevelOf('system_u:object_r:container_file_t:s0'), 'container_file_t:s0');
  t.equal(typeLevelOf('system_u:object_r:svirt_sandbox_file_t:s0-s0:c0.c1023'), 'svirt_sandbox_file_t:s0-s0:c0.c1023');
  for (const bad of ['', 'container_file_t:s0', 'a:b:c', 'a:b:c:s0:c1 ', 'a:b:c:x0', 'a:b:c:s0\n']) t.equal(typeLevelOf(bad), null, JSON.stringify(bad));
});

t.test('a relabel root that is a system directory is a located validation error', async (t) => {
  const result = parsePolicy('version: 1\nvolumes:\n  selinux:\n    relabel: shared\n    roots: [/srv/containers, /var/lib/]\n', 'policy.yaml');
  t.equal(result.ok, false);
  if (!result.ok) t.match(result.errors[0], { line: 5, message: /system directory/ });
});

t.test('volumes.create: declared directories a matching container bind-mounts', async (t) => {
  const result = parsePolicy(`version: 1
volumes:
  create:
    - { match: { container: "db-*" }, path: /srv/containers/db, owner: "999:999", mode: "0700" }
    - { match: { image: "docker.io/library/redis:*" }, path: /srv/containers/redis/, owner: "0:0" }
`, 'policy.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  const { volumes } = result.policy;
  t.match(volumes.create, [{ index: 0, path: '/srv/containers/db', owner: { uid: 999, gid: 999 }, mode: 0o700 }, { index: 1, path: '/srv/containers/redis', mode: 0o750 }]);
  const db = makeFacts({ name: 'db-1', mounts: [bind('/srv/containers/db')] });
  t.same(storageDirectoriesFor(volumes, db).map((d) => d.index), [0]);
  t.same(storageDirectoriesFor(volumes, makeFacts({ name: 'web', mounts: [bind('/srv/containers/db')] })), [], 'selector does not hold');
  t.same(storageDirectoriesFor(volumes, makeFacts({ name: 'db-2', mounts: [bind('/srv/containers/other')] })), [], 'not mounted');
});

t.test('volumes.create: bad owner, mode and path are located errors', async (t) => {
  const result = parsePolicy(`version: 1
volumes:
  create:
    - { match: { container: a }, path: /etc, owner: "999:999" }
    - { match: { container: a }, path: /srv/x, owner: "root:root" }
    - { match: { container: a }, path: /srv/x, owner: "1:1", mode: 0750 }
    - { match: { container: a }, path: /srv/x, owner: "1:1", mode: "0980" }
`, 'policy.yaml');
  t.equal(result.ok, false);
  if (result.ok) return;
  t.match(result.errors, [
    { line: 4, message: /system directory/ },
    { line: 5, message: /"root:root" is not an owner; expected numeric uid:gid/ },
    { line: 6, message: /write it quoted, e\.g\. "0750"/ },
    { line: 7, message: /"0980" is not a directory mode/ },
  ]);
});
