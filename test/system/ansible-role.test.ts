import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { debianRoot, run } from '../helpers/debian-root.js';

/**
 * deploy/ansible (issue #19): Debian's ansible runs the example playbook deploy/ansible/site.yml
 * against a fresh Debian 12 root (connection: chroot): installs the package (built here), writes
 * the policy in audit mode first; a re-run changes nothing; enforcing is one more run; a policy
 * that `dockwarden policy validate` refuses fails the play and the host keeps its policy.
 */
t.setTimeout(30 * 60_000);

const REPO = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'dw-ansible-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

interface PlayResult {
  readonly code: number;
  readonly changed: number;
  readonly failures: number;
  readonly tasks: ReadonlyArray<{ readonly name: string; readonly changed: boolean; readonly failed: boolean; readonly msg: string }>;
  readonly raw: string;
}

t.test('the role installs, validates, stays idempotent and refuses a broken policy', async (t) => {
  const build = run('bash', [join(REPO, 'scripts/build-deb.sh'), '--out', dir], { ...process.env, DW_DEB_COMPRESSION: 'gzip' });
  t.equal(build.code, 0, build.code === 0 ? 'package built' : build.out.slice(-2000));
  const deb = build.stdout.trim();
  const root = debianRoot(t);
  const inventory = join(dir, 'hosts');
  writeFileSync(inventory, `[docker_hosts]\n${root.dir} ansible_connection=community.general.chroot ansible_python_interpreter=/usr/bin/python3\n`);

  const play = (extra: Record<string, unknown>): PlayResult => {
    const args = ['-i', inventory, join(REPO, 'deploy/ansible/site.yml'), '-e', JSON.stringify({ dockwarden_deb: deb, ...extra })];
    const env = { ...process.env, ANSIBLE_STDOUT_CALLBACK: 'json', ANSIBLE_NOCOLOR: '1', ANSIBLE_RETRY_FILES_ENABLED: '0', ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-tmp'), ANSIBLE_HOME: join(dir, 'ansible-home') };
    // env -u: the test runner injects NODE_OPTIONS (a host path) into children; ansible passes it on into the chroot
    const r = run('env', ['-u', 'NODE_OPTIONS', 'ansible-playbook', ...args], env);
    const json = JSON.parse(r.stdout) as {
      plays: Array<{ tasks: Array<{ task: { name: string }; hosts: Record<string, { changed?: boolean; failed?: boolean; msg?: string; stderr?: string; stdout?: string }> }> }>;
      stats: Record<string, { changed: number; failures: number }>;
    };
    const stats = json.stats[root.dir]!;
    const tasks = json.plays.flatMap((p) => p.tasks).map(({ task, hosts }) => {
      const h = hosts[root.dir] ?? {};
      return { name: task.name.replace(/^dockwarden : /, ''), changed: h.changed === true, failed: h.failed === true, msg: `${h.msg ?? ''} ${h.stdout ?? ''} ${h.stderr ?? ''}` };
    });
    return { code: r.code, changed: stats.changed, failures: stats.failures, tasks, raw: r.out.slice(-3000) };
  };
  const live = root.path('/etc/dockwarden/policy.yaml');
  const shipped = readFileSync(join(REPO, 'config/policy.yaml'), 'utf8');

  const first = play({ dockwarden_mode: 'audit' });
  t.equal(first.code, 0, first.code === 0 ? 'first run (audit) succeeds' : first.raw);
  t.equal(first.failures, 0, 'no task failed');
  t.ok(first.changed >= 3, 'package copied and installed, policy written');
  t.match(root.run(['dpkg-query', '-W', '-f', '${db:Status-Abbrev}', 'dockwarden']).out, /^ii/, 'the package is installed');
  const audit = readFileSync(live, 'utf8');
  t.equal(audit, shipped.replace(/^mode:.*$/m, 'mode: audit'), 'rolled out in audit mode: the policy file as written, comments included, but its mode line');
  t.match(root.run(['dockwarden', 'policy', 'validate']).out, /valid \(mode audit/, 'dockwarden reads it as audit');
  t.ok(first.tasks.some((x) => x.name === 'Reload dockwarden'), 'the reload handler ran on the change');

  const again = play({ dockwarden_mode: 'audit' });
  t.equal(again.code, 0, again.code === 0 ? 're-run succeeds' : again.raw);
  t.equal(again.changed, 0, `a re-run changes nothing: ${again.tasks.filter((x) => x.changed).map((x) => x.name).join(', ')}`);
  t.notOk(again.tasks.some((x) => x.name === 'Reload dockwarden'), 'and reloads nothing');

  const config = { metrics: { listen: 'tcp://127.0.0.1:9464' }, log: { level: 'debug' } };
  const enforce = play({ dockwarden_config: config });
  t.equal(enforce.code, 0, enforce.code === 0 ? 'enforcing run succeeds' : enforce.raw);
  t.equal(readFileSync(live, 'utf8'), shipped, 'then enforced: the policy exactly as written');
  t.ok(enforce.tasks.some((x) => x.name === 'Restart dockwarden'), 'a config change restarts the daemon');
  const written = root.path('/etc/dockwarden/config.yaml');
  t.equal(statSync(written).mode & 0o7777, 0o600, 'config.yaml stays 0600');
  t.match(readFileSync(written, 'utf8'), /listen: tcp:\/\/127\.0\.0\.1:9464/, 'the config from the variables');

  const broken = join(dir, 'broken.yaml');
  writeFileSync(broken, shipped.replace(/allow: \[any\]/, 'allow: [10.0.0.300/8]'));
  const refused = play({ dockwarden_policy_file: broken });
  t.not(refused.code, 0, 'the play fails');
  t.equal(refused.failures, 1, 'one task failed');
  const failed = refused.tasks.find((x) => x.failed);
  t.equal(failed?.name, 'Write the policy, validated by dockwarden before it replaces the live one', 'the policy task');
  t.match(failed?.msg, /failed to validate/, 'refused by its validate command');
  t.match(failed?.msg, /:\d+:\d+: ports\.rules\[0\]\.allow\[0\]: "10\.0\.0\.300\/8"/, "dockwarden's own located message");
  t.equal(readFileSync(live, 'utf8'), shipped, 'the host keeps its policy');
});
