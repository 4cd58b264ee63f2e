import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnDaemon } from '../helpers/daemon.js';
import { DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { until } from '../helpers/until.js';
import { sample } from '../helpers/metrics.js';

/**
 * deploy/prometheus/dockwarden-rules.yml and deploy/grafana/dockwarden-dashboard.json (issue #19):
 * promtool's own unit tests of every alert; the metrics the rules read, as a real daemon serves
 * them (ready, Docker up or not, alerts raised per check); and a real Prometheus (Debian's)
 * scraping a real daemon that judges, kills and alerts: every dashboard query returns data, and
 * the drift alert fires when the daemon's nftables table is deleted under it.
 */
const REPO = resolve(import.meta.dirname, '../..');
const RULES = join(REPO, 'deploy/prometheus/dockwarden-rules.yml');
const DASHBOARD = join(REPO, 'deploy/grafana/dockwarden-dashboard.json');
const NFT = 'firewall:\n  backend: nftables\n  driftCheckSeconds: 1';
const SUITE = 'dw-test.suite=prometheus';

t.before(() => removeTestContainers(SUITE));
t.teardown(() => removeTestContainers(SUITE));

function run(file: string, args: string[]): { code: number; out: string } {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function httpGet(options: { socketPath: string } | { host: string; port: number }, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ ...options, path, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

t.test('promtool: the rules are valid and each alert fires when it should, and only then', async (t) => {
  const check = run('promtool', ['check', 'rules', RULES]);
  t.equal(check.code, 0, check.out);
  const test = run('promtool', ['test', 'rules', join(REPO, 'deploy/prometheus/dockwarden-rules.test.yml')]);
  t.equal(test.code, 0, test.out);
});

t.test('every metric the rules read is one the daemon serves', async (t) => {
  const daemon = spawnDaemon({ policy: 'version: 1\n', dockerSocket: DOCKER_SOCKET, extraConfig: NFT });
  t.teardown(() => daemon.stop('SIGKILL'));
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  const body = await httpGet({ socketPath: daemon.metricsSocket }, '/metrics');
  const used = new Set([...readFileSync(RULES, 'utf8').matchAll(/\b(dockwarden_[a-z_]+?)(?:_count|_bucket|_sum)?\b/g)].map((m) => m[1]!));
  t.ok(used.size >= 8, `the rules read ${[...used].join(', ')}`);
  for (const name of used) t.match(body, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is served`);
  t.equal(sample(body, 'dockwarden_ready'), 1, 'ready after the first reconcile');
  t.equal(sample(body, 'dockwarden_docker_up'), 1, 'Docker answers');
});

t.test('Docker unreachable: dockwarden_docker_up 0, still ready, the alert counted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-nodocker-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const daemon = spawnDaemon({ policy: 'version: 1\n', dockerSocket: join(dir, 'no-docker.sock'), extraConfig: NFT });
  t.teardown(() => daemon.stop('SIGKILL'));
  await daemon.waitForLog((l) => l.msg === 'Docker unreachable; rules stay in place');
  const body = await until(async () => {
    const b = await httpGet({ socketPath: daemon.metricsSocket }, '/metrics');
    return sample(b, 'dockwarden_docker_up') === 0 ? b : undefined;
  }, 10_000, 'dockwarden_docker_up 0');
  t.equal(sample(body, 'dockwarden_ready'), 1, 'READY is sent with Docker unreachable (systemd is not held up)');
  t.equal(sample(body, 'dockwarden_alerts_total{check="daemon.docker-unreachable"}'), 1, 'one alert per outage');
});

t.test('a real Prometheus scraping a real daemon: every dashboard query returns data; deleting the table fires the drift alert', async (t) => {
  const hook = await new WebhookReceiver(null).up();
  t.teardown(() => hook.down());
  const policy = 'version: 1\ncontainers:\n  root-user: { action: alert }\n  capabilities: { forbidden: [SYS_ADMIN], action: kill }\n';
  const metricsPort = await freePort();
  const daemon = spawnDaemon({ policy, dockerSocket: DOCKER_SOCKET, metricsListen: `tcp://127.0.0.1:${metricsPort}`, extraConfig: `${NFT}\nalerts:\n  webhooks:\n    - { url: "${hook.url}", format: slack }` });
  t.teardown(() => daemon.stop('SIGKILL'));
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  // one container that stays in violation (root-user: alert), one that is killed (SYS_ADMIN)
  await runContainer({ cmd: ['sleep', '3600'], labels: { 'dw-test.suite': 'prometheus' } });
  const killed = await runContainer({ cmd: ['sleep', '3600'], labels: { 'dw-test.suite': 'prometheus' }, hostConfig: { CapAdd: ['SYS_ADMIN'] } });
  await daemon.waitForLog((l) => l.msg === 'container killed' && (l.container as { id: string }).id === killed);

  const dir = mkdtempSync(join(tmpdir(), 'dw-prometheus-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(RULES)}]`,
      `scrape_configs: [{ job_name: dockwarden, static_configs: [{ targets: ["127.0.0.1:${metricsPort}"] }] }]`,
    ].join('\n') + '\n',
  );
  const webPort = await freePort();
  const prometheus = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${webPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let prometheusLog = '';
  prometheus.stderr.on('data', (c: Buffer) => (prometheusLog = (prometheusLog + c.toString()).slice(-4000)));
  t.teardown(() => void prometheus.kill('SIGKILL'));
  const api = (path: string) => httpGet({ host: '127.0.0.1', port: webPort }, path).then((b) => JSON.parse(b) as { data: unknown });

  try {
    // the target is scraped and the daemon's own series are there
    await until(async () => {
      const { data } = (await api('/api/v1/query?query=dockwarden_docker_up')) as { data: { result: Array<{ value: [number, string] }> } };
      return data.result[0]?.value[1] === '1' ? true : undefined;
    }, 30_000, 'Prometheus to scrape dockwarden_docker_up 1');
    const { data: rules } = (await api('/api/v1/rules')) as { data: { groups: Array<{ rules: Array<{ name: string; health: string }> }> } };
    const loaded = rules.groups.flatMap((g) => g.rules);
    const written = readFileSync(RULES, 'utf8').match(/^\s+- alert: /gm)!.length;
    t.equal(loaded.length, written, `all ${written} rules of the file loaded`);
    t.same(loaded.filter((r) => r.health !== 'ok' && r.health !== 'unknown'), [], 'no rule fails to evaluate');

    // Each dashboard query, as Grafana would send it with "All" hosts selected, has data once the
    // daemon's activity is in two scrapes (rate() and increase() need two samples).
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const queries = dashboard.panels.flatMap((p) => p.targets.map((q) => ({ panel: p.title, expr: q.expr.replaceAll('$instance', '.*') })));
    t.ok(queries.length >= 12, `${queries.length} queries`);
    for (const { panel, expr } of queries) {
      const data = await until(async () => {
        const { data } = (await api(`/api/v1/query?query=${encodeURIComponent(expr)}`)) as { data: { result: Array<{ value: [number, string] }> } };
        return data.result.length > 0 && data.result.every((r) => r.value[1] !== 'NaN') ? data.result : undefined;
      }, 20_000, `data for ${panel}: ${expr}`);
      t.ok(data.length > 0, `${panel}: ${expr}`);
    }

    const removed = run('nft', ['delete', 'table', 'inet', 'dockwarden']);
    t.equal(removed.code, 0, `nft delete table: ${removed.out}`);
    await daemon.waitForLog((l) => l.msg === 'firewall drift repaired', 15_000);
    const alert = await until(async () => {
      const { data } = (await api('/api/v1/alerts')) as { data: { alerts: Array<{ labels: Record<string, string>; state: string }> } };
      return data.alerts.find((a) => a.labels.alertname === 'DockwardenFirewallDriftRepaired' && a.state === 'firing');
    }, 30_000, 'the drift alert to fire');
    t.same({ check: alert.labels.check, job: alert.labels.job, severity: alert.labels.severity }, { check: 'daemon.firewall-drift-repaired', job: 'dockwarden', severity: 'warning' });
  } catch (error) {
    t.comment(`prometheus log:\n${prometheusLog}`);
    throw error;
  }
});
