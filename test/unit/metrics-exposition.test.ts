import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveMetrics } from '../../src/adapters/metrics-server.js';
import type { FirewallBackend } from '../../src/adapters/firewall/backend.js';
import { DaemonMetrics } from '../../src/app/metrics.js';
import type { Tracked } from '../../src/app/reconciler.js';

/** The Prometheus text the daemon serves, byte for byte (what prom-client wrote; dashboards and alert rules read it). */
const EXPECTED = `# HELP dockwarden_docker_events_total Docker container events received, by action.
# TYPE dockwarden_docker_events_total counter
dockwarden_docker_events_total{action="start"} 2
dockwarden_docker_events_total{action="die"} 1
dockwarden_docker_events_total{action="odd \\"quoted\\" \\\\ back\\nslash"} 1

# HELP dockwarden_container_actions_total Stops and kills of violating containers, by action and outcome (done, failed).
# TYPE dockwarden_container_actions_total counter
dockwarden_container_actions_total{action="kill",outcome="done"} 1
dockwarden_container_actions_total{action="stop",outcome="failed"} 2

# HELP dockwarden_bridge_filter_failures_total Containers whose bridge ports could not be found or filtered (each time a sync failed); they run unfiltered until one succeeds.
# TYPE dockwarden_bridge_filter_failures_total counter
dockwarden_bridge_filter_failures_total 0

# HELP dockwarden_firewall_apply_seconds Firewall transactions (update: set elements; replace: the whole ruleset), by kind and outcome.
# TYPE dockwarden_firewall_apply_seconds histogram
dockwarden_firewall_apply_seconds_bucket{le="0.002",kind="update",outcome="ok"} B
dockwarden_firewall_apply_seconds_bucket{le="0.005",kind="update",outcome="ok"} B
dockwarden_firewall_apply_seconds_bucket{le="0.01",kind="update",outcome="ok"} B
dockwarden_firewall_apply_seconds_bucket{le="0.025",kind="update",outcome="ok"} B
dockwarden_firewall_apply_seconds_bucket{le="0.05",kind="update",outcome="ok"} B
dockwarden_firewall_apply_seconds_bucket{le="0.1",kind="update",outcome="ok"} B
dockwarden_firewall_apply_seconds_bucket{le="0.25",kind="update",outcome="ok"} B
dockwarden_firewall_apply_seconds_bucket{le="0.5",kind="update",outcome="ok"} B
dockwarden_firewall_apply_seconds_bucket{le="1",kind="update",outcome="ok"} B
dockwarden_firewall_apply_seconds_bucket{le="2.5",kind="update",outcome="ok"} B
dockwarden_firewall_apply_seconds_bucket{le="10",kind="update",outcome="ok"} B
dockwarden_firewall_apply_seconds_bucket{le="+Inf",kind="update",outcome="ok"} 2
dockwarden_firewall_apply_seconds_sum{kind="update",outcome="ok"} SUM
dockwarden_firewall_apply_seconds_count{kind="update",outcome="ok"} 2
dockwarden_firewall_apply_seconds_bucket{le="0.002",kind="replace",outcome="failed"} B
dockwarden_firewall_apply_seconds_bucket{le="0.005",kind="replace",outcome="failed"} B
dockwarden_firewall_apply_seconds_bucket{le="0.01",kind="replace",outcome="failed"} B
dockwarden_firewall_apply_seconds_bucket{le="0.025",kind="replace",outcome="failed"} B
dockwarden_firewall_apply_seconds_bucket{le="0.05",kind="replace",outcome="failed"} B
dockwarden_firewall_apply_seconds_bucket{le="0.1",kind="replace",outcome="failed"} B
dockwarden_firewall_apply_seconds_bucket{le="0.25",kind="replace",outcome="failed"} B
dockwarden_firewall_apply_seconds_bucket{le="0.5",kind="replace",outcome="failed"} B
dockwarden_firewall_apply_seconds_bucket{le="1",kind="replace",outcome="failed"} B
dockwarden_firewall_apply_seconds_bucket{le="2.5",kind="replace",outcome="failed"} B
dockwarden_firewall_apply_seconds_bucket{le="10",kind="replace",outcome="failed"} B
dockwarden_firewall_apply_seconds_bucket{le="+Inf",kind="replace",outcome="failed"} 1
dockwarden_firewall_apply_seconds_sum{kind="replace",outcome="failed"} SUM
dockwarden_firewall_apply_seconds_count{kind="replace",outcome="failed"} 1

# HELP dockwarden_reconcile_seconds Full reconciles (list, inspect and judge every container), by outcome.
# TYPE dockwarden_reconcile_seconds histogram

# HELP dockwarden_gate_decision_seconds The authorization gate judging a request while dockerd waits, by route (create, start, exec, ..., other: let through unread) and outcome (allowed, refused, failed: an internal error, refused).
# TYPE dockwarden_gate_decision_seconds histogram
dockwarden_gate_decision_seconds_bucket{le="0.0005",route="create",outcome="refused"} B
dockwarden_gate_decision_seconds_bucket{le="0.001",route="create",outcome="refused"} B
dockwarden_gate_decision_seconds_bucket{le="0.0025",route="create",outcome="refused"} B
dockwarden_gate_decision_seconds_bucket{le="0.005",route="create",outcome="refused"} B
dockwarden_gate_decision_seconds_bucket{le="0.01",route="create",outcome="refused"} B
dockwarden_gate_decision_seconds_bucket{le="0.025",route="create",outcome="refused"} B
dockwarden_gate_decision_seconds_bucket{le="0.1",route="create",outcome="refused"} B
dockwarden_gate_decision_seconds_bucket{le="0.5",route="create",outcome="refused"} B
dockwarden_gate_decision_seconds_bucket{le="1",route="create",outcome="refused"} B
dockwarden_gate_decision_seconds_bucket{le="5",route="create",outcome="refused"} B
dockwarden_gate_decision_seconds_bucket{le="+Inf",route="create",outcome="refused"} 1
dockwarden_gate_decision_seconds_sum{route="create",outcome="refused"} SUM
dockwarden_gate_decision_seconds_count{route="create",outcome="refused"} 1
dockwarden_gate_decision_seconds_bucket{le="0.0005",route="unknown",outcome="failed"} B
dockwarden_gate_decision_seconds_bucket{le="0.001",route="unknown",outcome="failed"} B
dockwarden_gate_decision_seconds_bucket{le="0.0025",route="unknown",outcome="failed"} B
dockwarden_gate_decision_seconds_bucket{le="0.005",route="unknown",outcome="failed"} B
dockwarden_gate_decision_seconds_bucket{le="0.01",route="unknown",outcome="failed"} B
dockwarden_gate_decision_seconds_bucket{le="0.025",route="unknown",outcome="failed"} B
dockwarden_gate_decision_seconds_bucket{le="0.1",route="unknown",outcome="failed"} B
dockwarden_gate_decision_seconds_bucket{le="0.5",route="unknown",outcome="failed"} B
dockwarden_gate_decision_seconds_bucket{le="1",route="unknown",outcome="failed"} B
dockwarden_gate_decision_seconds_bucket{le="5",route="unknown",outcome="failed"} B
dockwarden_gate_decision_seconds_bucket{le="+Inf",route="unknown",outcome="failed"} 1
dockwarden_gate_decision_seconds_sum{route="unknown",outcome="failed"} SUM
dockwarden_gate_decision_seconds_count{route="unknown",outcome="failed"} 1

# HELP dockwarden_containers_watched Containers dockwarden currently judges (running or not).
# TYPE dockwarden_containers_watched gauge
dockwarden_containers_watched 3

# HELP dockwarden_violations Current violations across watched containers, by check.
# TYPE dockwarden_violations gauge
dockwarden_violations{check="privileged"} 2
dockwarden_violations{check="ports"} 1

# HELP dockwarden_queue_depth Container tasks waiting or running.
# TYPE dockwarden_queue_depth gauge
dockwarden_queue_depth 4

# HELP dockwarden_queue_tasks_total Container tasks by outcome: enqueued, coalesced (absorbed by a waiting twin), dropped (queue full), completed, failed.
# TYPE dockwarden_queue_tasks_total counter
dockwarden_queue_tasks_total{outcome="enqueued"} 10
dockwarden_queue_tasks_total{outcome="coalesced"} 1
dockwarden_queue_tasks_total{outcome="dropped"} 0
dockwarden_queue_tasks_total{outcome="completed"} 8
dockwarden_queue_tasks_total{outcome="failed"} 1

# HELP dockwarden_alert_deliveries_total Alert deliveries per sink: delivered, or failed attempts (each retried until delivered or dropped by the queue bound).
# TYPE dockwarden_alert_deliveries_total counter
dockwarden_alert_deliveries_total{sink="syslog",outcome="delivered"} 5
dockwarden_alert_deliveries_total{sink="syslog",outcome="failed"} 0
dockwarden_alert_deliveries_total{sink="webhook:https://example.test/x",outcome="delivered"} 2
dockwarden_alert_deliveries_total{sink="webhook:https://example.test/x",outcome="failed"} 3

# HELP dockwarden_alerts_total Alerts raised, by check (daemon.firewall-drift-repaired, daemon.docker-unreachable, privileged, ...); repeats folded by the dedupe window are not counted.
# TYPE dockwarden_alerts_total counter
dockwarden_alerts_total{check="privileged"} 7
dockwarden_alerts_total{check="daemon.docker-unreachable"} 1

# HELP dockwarden_ready 1 once the daemon has told systemd it is ready (after the first reconcile, or with Docker unreachable), else 0.
# TYPE dockwarden_ready gauge
dockwarden_ready 1

# HELP dockwarden_docker_up 1 while the Docker engine answers (event stream connected), 0 while it is unreachable.
# TYPE dockwarden_docker_up gauge
dockwarden_docker_up 0

# HELP dockwarden_alert_queue Alerts waiting on disk per sink.
# TYPE dockwarden_alert_queue gauge
dockwarden_alert_queue{sink="syslog"} 0
dockwarden_alert_queue{sink="webhook:https://example.test/x"} 6
`;

const tracked = (...checks: string[]) => ({ decision: { violations: checks.map((check) => ({ check })) } }) as unknown as Tracked;

t.test('the metrics served over a real socket are the Prometheus text format, as prom-client wrote it', async (t) => {
  const metrics = new DaemonMetrics({
    tracked: () => new Map([['a', tracked('privileged', 'ports')], ['b', tracked('privileged')], ['c', tracked()]]),
    queue: () => ({ depth: 4, counters: { enqueued: 10, coalesced: 1, dropped: 0, completed: 8, failed: 1 } }),
    alertSinks: () => [
      { name: 'syslog', delivered: 5, failures: 0, queued: 0 },
      { name: 'webhook:https://example.test/x', delivered: 2, failures: 3, queued: 6 },
    ],
    alertsRaised: () => new Map([['privileged', 7], ['daemon.docker-unreachable', 1]]),
    daemon: () => ({ ready: true, dockerUp: false }),
  });
  metrics.dockerEvent('start');
  metrics.dockerEvent('die');
  metrics.dockerEvent('start');
  metrics.dockerEvent('odd "quoted" \\ back\nslash');
  metrics.containerAction('kill', 'done');
  metrics.containerAction('stop', 'failed');
  metrics.containerAction('stop', 'failed');
  const backend = metrics.measured({
    name: 'nftables',
    update: async () => {},
    replace: async () => Promise.reject(new Error('no')),
  } as unknown as FirewallBackend);
  await backend.update({} as never, {} as never);
  await backend.update({} as never, {} as never);
  await t.rejects(backend.replace({} as never));
  await metrics.gateDecision(async () => ({ allow: false, msg: 'refused', route: 'create', judged: null, blocking: [] }));
  await t.rejects(metrics.gateDecision(() => Promise.reject(new Error('engine gone'))));

  const dir = mkdtempSync(join(tmpdir(), 'dw-metrics-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'metrics.sock');
  const server = await serveMetrics({ kind: 'unix', path: socketPath }, metrics.registry);
  t.teardown(() => server?.close());
  const { type, body } = await new Promise<{ type: string | undefined; body: string }>((resolve, reject) => {
    request({ socketPath, path: '/metrics' }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve({ type: res.headers['content-type'], body: text }));
    }).on('error', reject).end();
  });
  t.equal(type, 'text/plain; version=0.0.4; charset=utf-8');
  // Times are real, so which bucket a transaction falls in is not fixed: buckets are cumulative, up to the count.
  const histograms = [
    ['dockwarden_firewall_apply_seconds', 'kind="update",outcome="ok"', 2, 11],
    ['dockwarden_firewall_apply_seconds', 'kind="replace",outcome="failed"', 1, 11],
    ['dockwarden_gate_decision_seconds', 'route="create",outcome="refused"', 1, 10],
    ['dockwarden_gate_decision_seconds', 'route="unknown",outcome="failed"', 1, 10],
  ] as const;
  for (const [name, series, count, bounds] of histograms) {
    const buckets = [...body.matchAll(new RegExp(`^${name}_bucket\\{le="[^"]+",${series}\\} (\\d+)$`, 'gm'))].map((m) => Number(m[1]));
    t.equal(buckets.length, bounds + 1, `${series}: ${bounds} buckets and +Inf`);
    t.ok(buckets.every((n, i) => i === 0 || n >= buckets[i - 1]!) && buckets.at(-1) === count, `${series}: cumulative, +Inf = count (${buckets.join(' ')})`);
    const sum = Number(new RegExp(`^${name}_sum\\{${series}\\} (\\S+)$`, 'm').exec(body)?.[1]);
    t.ok(sum > 0 && sum < 10, `${series}: a sum in seconds (${sum})`);
  }
  const shown = body
    .replace(/^(dockwarden_(?:firewall_apply|gate_decision)_seconds_sum\{[^}]*\}) \S+$/gm, '$1 SUM')
    .replace(/^(dockwarden_(?:firewall_apply|gate_decision)_seconds_bucket\{le="(?!\+Inf)[^"]*",[^}]*\}) \d+$/gm, '$1 B');
  t.equal(shown, EXPECTED);
});
