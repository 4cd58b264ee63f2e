import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { dockwarden } from '../helpers/cli.js';
import { docker, DOCKER_SOCKET } from '../helpers/docker.js';

const DEMO = resolve('scripts/demo.sh');

t.test('demo.sh shows the policy at work: an allowed client through, a denied one refused, a forbidden container killed; and cleans up', async (t) => {
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((done) => {
    execFile(DEMO, [], { env: { ...process.env, DW_DEMO_EXIT_AFTER_SHOW: '1' }, timeout: 240_000, maxBuffer: 64 * 1024 * 1024 }, (error, _stdout, stderr) =>
      done({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
    );
  });
  const said = stderr.split('\n').filter((l) => l.startsWith('demo: ')).join('\n');
  t.equal(code, 0, `demo exits 0 after the show\n${said}`);
  t.match(said, /^demo: client 198\.51\.100\.10 \(office\) -> grafana-demo:3000: got through \(HTTP \d{3}\)$/m, 'the allowed client got through');
  t.match(said, /^demo: client 198\.51\.100\.100 \(not in the policy\) -> grafana-demo:3000: refused/m, 'the denied client did not');
  t.match(said, /^demo: client 198\.51\.100\.10 \(office\) -> dw-demo-web:8080: refused/m, 'a port no rule matches is closed');
  t.match(said, /^demo: container dw-demo-forbidden: killed by dockwarden \(exited 137\)$/m, 'the forbidden container was killed');

  t.notMatch(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), /\bdw-demo\b/, 'its network namespace is gone');
  t.notMatch(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }), /dw-demo-h/, 'and its veth');
  t.notMatch(execFileSync('ip', ['-4', '-o', 'route', 'show', 'table', 'all'], { encoding: 'utf8' }), /198\.51\.100\./, 'and no route over the client range is left');
  const names = (await docker.listContainers({ all: true })).flatMap((c) => c.Names);
  t.notOk(names.includes('/dw-demo-forbidden'), 'the forbidden container is removed');
  t.teardown(async () => {
    // The demo's daemon stops as dockwarden does, leaving its firewall in place; later tests start from none.
    await dockwarden(['firewall', 'remove', '--config', resolve('config/config.yaml')], { DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET, DOCKWARDEN_POLICY: resolve('config/policy.yaml'), DOCKWARDEN_STATE_DIR: '/var/lib/dw-test/dockwarden' });
    for (const name of ['dw-demo-web', 'grafana-demo']) await docker.getContainer(name).remove({ force: true }).catch(() => undefined);
  });
});
