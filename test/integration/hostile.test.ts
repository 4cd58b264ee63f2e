import t from 'tap';
import { execFileSync } from 'node:child_process';
import { CLI, judged, spawnDaemon } from '../helpers/daemon.js';
import { DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';

const POLICY = `version: 1
sources:
  good: [198.51.100.10]
ports:
  labels: narrow
  rules:
    - { name: web, match: { port: 18200-18210/tcp }, allow: [good] }
`;

const HOSTILE = [
  '198.51.100.10"; flush ruleset; "',
  '198.51.100.10 } ; add rule inet dockwarden prerouting accept ; {',
  'x\n{"level":60,"msg":"forged"}\n',
  '] "quoted" \\ \u0000 \u001b[31m red',
];

t.before(removeTestContainers);
t.teardown(async () => {
  await removeTestContainers();
  execFileSync(process.execPath, [CLI, 'firewall', 'remove'], { env: { ...process.env, DOCKWARDEN_FIREWALL_BACKEND: 'nftables' }, stdio: 'ignore' });
});

t.test('hostile labels never reach the ruleset, never break a log line, and close the port', async (t) => {
  const ids: string[] = [];
  for (const [i, value] of HOSTILE.entries()) {
    ids.push(await runContainer({ publish: [`${18200 + i}:80/tcp`], labels: { 'dockwarden.ports.allow': value, [`evil\n"key${i}`]: value } }));
  }
  const huge = 'A'.repeat(1 << 20);
  ids.push(await runContainer({ publish: ['18209:80/tcp'], labels: { 'com.example.huge': huge } }));

  const d = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: 'firewall:\n  backend: nftables' });
  t.teardown(() => d.stop('SIGKILL'));
  for (const id of ids) await d.waitForLog(judged(id));
  await d.waitForLog((l) => l.msg === 'reconciled');

  t.same(d.logs.filter((l) => String(l.msg).startsWith('(not JSON)')), [], 'every log line is one JSON object');
  t.notOk(d.logs.some((l) => l.msg === 'forged'), 'no forged log record');
  const closed = d.logs.filter((l) => l.msg === 'port closed: narrowing label unreadable');
  t.equal(new Set(closed.map((l) => (l.container as { id: string }).id)).size, HOSTILE.length, 'each hostile label closes its container\'s ports');
  for (const id of ids.slice(0, HOSTILE.length)) {
    const line = d.logs.find(judged(id))!;
    for (const p of line.ports as Array<{ allow: unknown }>) t.same(p.allow, [], 'nobody may connect');
  }
  const hugeLine = d.logs.find(judged(ids.at(-1)!))!;
  t.same((hugeLine.ports as Array<{ allow: unknown }>)[0]!.allow, ['198.51.100.10/32'], 'a 1 MB label elsewhere changes nothing');

  const ruleset = execFileSync('nft', ['list', 'table', 'inet', 'dockwarden'], { encoding: 'utf8' });
  for (const needle of ['flush', 'accept ;', 'forged', 'quoted', 'evil', 'AAAA']) t.notOk(ruleset.includes(needle), `ruleset free of ${JSON.stringify(needle)}`);
  t.equal(await d.stop(), 0);
});
