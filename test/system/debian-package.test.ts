import t from 'tap';
import { copyFileSync, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { debianRoot, paths, run } from '../helpers/debian-root.js';

/**
 * The Debian package (issue #19): scripts/build-deb.sh builds it; installed with apt into a fresh
 * Debian 12 root (no Node.js there: the bundled runtime runs it), upgraded by a higher-version
 * build (the admin's conffile edits and the state survive), removed (config kept), purged (nothing
 * of it left); and lintian reports nothing that deploy/debian/lintian-overrides does not explain.
 * Slow by nature (two package builds, apt from the archive, lintian): ~5 min on the 2-core VM.
 */
t.setTimeout(30 * 60_000);

const REPO = resolve(import.meta.dirname, '../..');
const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const NEXT = `${VERSION}+1`; // sorts after VERSION for dpkg
// Package-manager databases, logs and caches change with any install; kernel and scratch dirs are not files of the root.
const VOLATILE = ['/proc', '/sys', '/dev', '/run', '/tmp', '/var/lib/dpkg', '/var/lib/apt', '/var/cache', '/var/log', '/var/tmp', '/etc/ld.so.cache'];

const out = mkdtempSync(join(tmpdir(), 'dw-deb-'));
t.teardown(() => rmSync(out, { recursive: true, force: true }));

function build(version: string): string {
  // gzip instead of the default xz: the same package, built in seconds instead of a minute
  const r = run('bash', [join(REPO, 'scripts/build-deb.sh'), '--out', out], { ...process.env, DW_DEB_VERSION: version, DW_DEB_COMPRESSION: 'gzip' });
  if (r.code !== 0) throw new Error(`build-deb.sh failed (${r.code}):\n${r.out.slice(-3000)}`);
  return r.stdout.trim();
}

t.test('install, upgrade, remove, purge in a fresh Debian 12 root', async (t) => {
  const first = build(VERSION);
  const second = build(NEXT);
  t.match(basename(first), /^dockwarden_.+_(amd64|arm64)\.deb$/, 'named the Debian way');

  const root = debianRoot(t);
  const pristine = paths(root.dir, VOLATILE);
  const status = () => root.run(['dpkg-query', '-W', '-f', '${db:Status-Abbrev}${Version}', 'dockwarden']).out.trim();
  for (const deb of [first, second]) copyFileSync(deb, root.path(`/tmp/${basename(deb)}`));
  const present = (inside: string): boolean => lstatSync(root.path(inside), { throwIfNoEntry: false }) !== undefined;
  t.notOk(present('/usr/bin/node') || present('/usr/bin/nodejs'), 'the root has no Node.js of its own');

  const update = root.run(['apt-get', 'update', '-qq']);
  t.equal(update.code, 0, update.code === 0 ? 'apt-get update' : update.out.slice(-500));
  // --no-install-recommends: Docker itself (recommended) is not needed to test the package
  const install = root.run(['apt-get', 'install', '-y', '--no-install-recommends', `/tmp/${basename(first)}`]);
  t.equal(install.code, 0, install.code === 0 ? `apt install ./${basename(first)}` : install.out.slice(-1500));
  t.equal(status(), `ii ${VERSION}`, 'installed');

  await t.test('installed', async (t) => {
    const validate = root.run(['dockwarden', 'policy', 'validate']);
    t.equal(validate.code, 0, `the CLI runs on the bundled runtime: ${validate.out}`);
    t.match(validate.out, /policy\.yaml: valid \(mode enforce/, 'the shipped policy is valid');
    const addons = root.run(['/usr/lib/dockwarden/bin/node', '-e', "require('/usr/lib/dockwarden/native/build/Release/dw_selinux.node'); require('/usr/lib/dockwarden/native/build/Release/dw_nftevents.node'); require('/usr/lib/dockwarden/native/build/Release/dw_heap.node'); require('/usr/lib/dockwarden/node_modules/unix-dgram'); console.log(process.version)"]);
    t.equal(addons.code, 0, `the native addons load in the bundled runtime: ${addons.out}`);
    t.equal(addons.out.trim(), process.version, 'the runtime is the node that built the addons');
    t.match(readFileSync(root.path('/lib/systemd/system/dockwarden.service'), 'utf8'), /^ExecStart=\/usr\/sbin\/dockwarden run --config \/etc\/dockwarden\/config\.yaml$/m, 'the daemon unit runs /usr/sbin/dockwarden');
    t.match(readFileSync(root.path('/lib/systemd/system/dockwarden-firewall.service'), 'utf8'), /^ExecStart=\/usr\/sbin\/dockwarden firewall baseline /m, 'so does the baseline unit');
    // enabled the Debian way (deb-systemd-helper) though no systemd runs here: they start at boot
    t.equal(readlinkSync(root.path('/etc/systemd/system/multi-user.target.wants/dockwarden.service')), '/lib/systemd/system/dockwarden.service', 'daemon enabled');
    t.equal(readlinkSync(root.path('/etc/systemd/system/docker.service.requires/dockwarden-firewall.service')), '/lib/systemd/system/dockwarden-firewall.service', 'baseline required by docker.service');
    t.ok(existsSync(root.path('/lib/systemd/system/dockwarden-gate.socket')), 'the gate socket unit is shipped');
    t.notOk(existsSync(root.path('/etc/systemd/system/sockets.target.wants/dockwarden-gate.socket')), 'and left off: the admin turns the gate on');
    t.equal(statSync(root.path('/var/lib/dockwarden')).mode & 0o7777, 0o700, 'state dir 0700');
    t.equal(statSync(root.path('/etc/dockwarden/config.yaml')).mode & 0o7777, 0o600, 'config.yaml 0600 (webhook secrets)');
    const conffiles = root.run(['dpkg-query', '-W', '-f', '${Conffiles}', 'dockwarden']).out;
    t.match(conffiles, /\/etc\/dockwarden\/config\.yaml [0-9a-f]{32}/, 'config.yaml is a conffile');
    t.match(conffiles, /\/etc\/dockwarden\/policy\.yaml [0-9a-f]{32}/, 'policy.yaml is a conffile');
    for (const man of ['/usr/share/man/man8/dockwarden.8.gz', '/usr/share/man/man5/dockwarden-policy.5.gz']) t.ok(existsSync(root.path(man)), man);
  });

  // The admin's edit and the daemon's state, which an upgrade must keep.
  const policy = root.path('/etc/dockwarden/policy.yaml');
  writeFileSync(policy, readFileSync(policy, 'utf8').replace(/^mode: enforce.*$/m, 'mode: audit     # rolled out in audit first'));
  writeFileSync(root.path('/var/lib/dockwarden/kept'), 'state\n');

  await t.test('upgraded by a higher version', async (t) => {
    const upgrade = root.run(['apt-get', 'install', '-y', '--no-install-recommends', `/tmp/${basename(second)}`]);
    t.equal(upgrade.code, 0, upgrade.code === 0 ? `apt install ./${basename(second)}` : upgrade.out.slice(-1500));
    t.equal(status(), `ii ${NEXT}`, 'the higher version is installed');
    t.match(readFileSync(policy, 'utf8'), /^mode: audit {5}# rolled out in audit first$/m, "the admin's policy edit survived");
    t.match(root.run(['dockwarden', 'policy', 'validate']).out, /valid \(mode audit/, 'and is the one in force');
    t.same(readdirSync(root.path('/etc/dockwarden')).sort(), ['config.yaml', 'policy.yaml'], 'no .dpkg-new/.dpkg-dist beside it');
    t.ok(existsSync(root.path('/var/lib/dockwarden/kept')), 'state kept');
    t.equal(readlinkSync(root.path('/etc/systemd/system/multi-user.target.wants/dockwarden.service')), '/lib/systemd/system/dockwarden.service', 'still enabled');
  });

  await t.test('removed: the program goes, the configuration and state stay', async (t) => {
    const remove = root.run(['apt-get', 'remove', '-y', 'dockwarden']);
    t.equal(remove.code, 0, remove.code === 0 ? 'apt remove' : remove.out.slice(-1500));
    t.equal(status(), `rc ${NEXT}`, 'only its config files remain');
    for (const gone of ['/usr/lib/dockwarden', '/usr/sbin/dockwarden', '/lib/systemd/system/dockwarden.service', '/usr/share/man/man8/dockwarden.8.gz']) t.notOk(existsSync(root.path(gone)), `${gone} removed`);
    t.match(readFileSync(policy, 'utf8'), /^mode: audit/m, "the admin's policy kept");
    t.ok(existsSync(root.path('/etc/dockwarden/config.yaml')), 'config kept');
    t.ok(existsSync(root.path('/var/lib/dockwarden/kept')), 'state kept');
  });

  await t.test('purged: nothing of it is left', async (t) => {
    const purge = root.run(['apt-get', 'purge', '-y', 'dockwarden']);
    t.equal(purge.code, 0, purge.code === 0 ? 'apt purge' : purge.out.slice(-1500));
    t.equal(root.run(['dpkg-query', '-W', 'dockwarden']).code, 1, 'dpkg no longer knows it');
    for (const deb of [first, second]) rmSync(root.path(`/tmp/${basename(deb)}`));
    const after = paths(root.dir, VOLATILE);
    t.same([...after].filter((p) => p.includes('dockwarden')), [], 'no path of it anywhere');
    // Every path that was not in the fresh root belongs to a package apt pulled in as a dependency
    // (dpkg lists /bin/ip where merged-/usr puts /usr/bin/ip), or is deb-systemd-helper's state of
    // a dependency's unit (nftables.service): ours is covered by the check above.
    const owned = new Set<string>();
    for (const list of readdirSync(root.path('/var/lib/dpkg/info')).filter((f) => f.endsWith('.list')))
      for (const line of readFileSync(root.path(`/var/lib/dpkg/info/${list}`), 'utf8').split('\n')) owned.add(line).add(line.replace(/^\/(bin|sbin|lib|lib64)\//, '/usr/$1/'));
    const strays = [...after].filter((p) => !pristine.has(p) && !owned.has(p) && !p.startsWith('/var/lib/systemd/deb-systemd-helper-enabled/'));
    t.same(strays, [], 'no file that no package owns');
  });
});

t.test('lintian: every remaining tag is explained in deploy/debian/lintian-overrides', async (t) => {
  const deb = readdirSync(out).find((f) => f.endsWith('.deb')) ?? build(VERSION);
  const lint = run('lintian', ['--fail-on', 'error,warning', join(out, basename(deb))]);
  t.equal(lint.code, 0, lint.code === 0 ? 'lintian --fail-on error,warning passes' : lint.out);
  t.notMatch(lint.out, /^[EW]: /m, 'no error or warning');
});
