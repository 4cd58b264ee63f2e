import type { FirewallBackend } from '../adapters/firewall/backend.js';
import type { MetricsSource } from '../adapters/metrics-server.js';
import { CONTENT_TYPE, exposition, Histogram, Series, type Family } from './metrics-text.js';
import type { QueueCounters } from './keyed-queue.js';
import type { Alerter } from './alerts/alerter.js';
import type { Tracked } from './reconciler.js';
import type { GateVerdict } from './gate/judge-request.js';

/** What the metrics read when scraped: the daemon's live state, never a copy kept up to date. */
export interface MetricSources {
  readonly tracked: () => ReadonlyMap<string, Tracked>;
  readonly queue: () => { readonly depth: number; readonly counters: QueueCounters };
  readonly alertSinks: () => Alerter['sinks'];
  readonly alertsRaised: () => Alerter['raised'];
  /** ready: READY was sent (first reconcile done, or Docker found unreachable); dockerUp: the engine answers. */
  readonly daemon: () => { readonly ready: boolean; readonly dockerUp: boolean };
}

const APPLY_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
const RECONCILE_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** dockerd waits on the gate for every API call: the finest buckets sit where a decision should be (≤ 1 ms). */
const GATE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1, 5];

/**
 * The daemon's Prometheus metrics (src/app/metrics-text.ts). State that already exists (tracked
 * containers, the queue) is read at scrape time; events the daemon sees are counted as they happen
 * through the methods below.
 */
export class DaemonMetrics {
  /** What the metrics server serves. */
  readonly registry: MetricsSource = { contentType: CONTENT_TYPE, metrics: async () => exposition(this.families()) };
  private readonly events = new Series();
  private readonly actions = new Series();
  private bridgeFailures = 0;
  private readonly applies = new Histogram(APPLY_BUCKETS);
  private readonly reconciles = new Histogram(RECONCILE_BUCKETS);
  private readonly gateDecisions = new Histogram(GATE_BUCKETS);

  constructor(private readonly sources: MetricSources) {}

  private families(): Family[] {
    const { tracked, queue, alertSinks, alertsRaised, daemon } = this.sources;
    const violations = new Series();
    for (const { decision } of tracked().values()) for (const v of decision.violations) violations.add({ check: v.check });
    const tasks = new Series();
    for (const [outcome, count] of Object.entries(queue().counters)) tasks.add({ outcome }, count);
    const sinks = alertSinks();
    const alerts = new Series();
    for (const [check, count] of alertsRaised()) alerts.add({ check }, count);
    const { ready, dockerUp } = daemon();
    return [
      { name: 'dockwarden_docker_events_total', help: 'Docker container events received, by action.', type: 'counter', samples: this.events.samples() },
      {
        name: 'dockwarden_container_actions_total',
        help: 'Stops and kills of violating containers, by action and outcome (done, failed).',
        type: 'counter',
        samples: this.actions.samples(),
      },
      {
        name: 'dockwarden_bridge_filter_failures_total',
        help: 'Containers whose bridge ports could not be found or filtered (each time a sync failed); they run unfiltered until one succeeds.',
        type: 'counter',
        samples: [{ value: this.bridgeFailures }],
      },
      {
        name: 'dockwarden_firewall_apply_seconds',
        help: 'Firewall transactions (update: set elements; replace: the whole ruleset), by kind and outcome.',
        type: 'histogram',
        samples: this.applies.samples('dockwarden_firewall_apply_seconds'),
      },
      {
        name: 'dockwarden_reconcile_seconds',
        help: 'Full reconciles (list, inspect and judge every container), by outcome.',
        type: 'histogram',
        samples: this.reconciles.samples('dockwarden_reconcile_seconds'),
      },
      {
        name: 'dockwarden_gate_decision_seconds',
        help: 'The authorization gate judging a request while dockerd waits, by route (create, start, exec, ..., other: let through unread) and outcome (allowed, refused, failed: an internal error, refused).',
        type: 'histogram',
        samples: this.gateDecisions.samples('dockwarden_gate_decision_seconds'),
      },
      { name: 'dockwarden_containers_watched', help: 'Containers dockwarden currently judges (running or not).', type: 'gauge', samples: [{ value: tracked().size }] },
      { name: 'dockwarden_violations', help: 'Current violations across watched containers, by check.', type: 'gauge', samples: violations.samples() },
      { name: 'dockwarden_queue_depth', help: 'Container tasks waiting or running.', type: 'gauge', samples: [{ value: queue().depth }] },
      {
        name: 'dockwarden_queue_tasks_total',
        help: 'Container tasks by outcome: enqueued, coalesced (absorbed by a waiting twin), dropped (queue full), completed, failed.',
        type: 'counter',
        samples: tasks.samples(),
      },
      {
        name: 'dockwarden_alert_deliveries_total',
        help: 'Alert deliveries per sink: delivered, or failed attempts (each retried until delivered or dropped by the queue bound).',
        type: 'counter',
        samples: sinks.flatMap((sink) => [
          { labels: { sink: sink.name, outcome: 'delivered' }, value: sink.delivered },
          { labels: { sink: sink.name, outcome: 'failed' }, value: sink.failures },
        ]),
      },
      {
        name: 'dockwarden_alerts_total',
        help: 'Alerts raised, by check (daemon.firewall-drift-repaired, daemon.docker-unreachable, privileged, ...); repeats folded by the dedupe window are not counted.',
        type: 'counter',
        samples: alerts.samples(),
      },
      {
        name: 'dockwarden_ready',
        help: '1 once the daemon has told systemd it is ready (after the first reconcile, or with Docker unreachable), else 0.',
        type: 'gauge',
        samples: [{ value: ready ? 1 : 0 }],
      },
      {
        name: 'dockwarden_docker_up',
        help: '1 while the Docker engine answers (event stream connected), 0 while it is unreachable.',
        type: 'gauge',
        samples: [{ value: dockerUp ? 1 : 0 }],
      },
      { name: 'dockwarden_alert_queue', help: 'Alerts waiting on disk per sink.', type: 'gauge', samples: sinks.map((sink) => ({ labels: { sink: sink.name }, value: sink.queued })) },
    ];
  }

  dockerEvent(action: string): void {
    this.events.add({ action });
  }

  containerAction(action: 'stop' | 'kill', outcome: 'done' | 'failed'): void {
    this.actions.add({ action, outcome });
  }

  bridgeFilterFailed(): void {
    this.bridgeFailures += 1;
  }

  /** Times a reconcile, whatever its outcome. */
  reconcile<T>(run: () => Promise<T>): Promise<T> {
    return timed(run, (seconds, outcome) => this.reconciles.observe({ outcome }, seconds));
  }

  /** Times the gate's judgement of one request (the body's parse included), by the route and answer it came to. */
  gateDecision(judge: () => Promise<GateVerdict>): Promise<GateVerdict> {
    return timed(judge, (seconds, outcome, verdict) =>
      this.gateDecisions.observe(verdict ? { route: verdict.route, outcome: verdict.allow ? 'allowed' : 'refused' } : { route: 'unknown', outcome }, seconds),
    );
  }


  /** The same backend, each update and replace timed. */
  measured(backend: FirewallBackend): FirewallBackend {
    const observe = (kind: 'update' | 'replace') => (seconds: number, outcome: string) => this.applies.observe({ kind, outcome }, seconds);
    return {
      name: backend.name,
      nfTables: backend.nfTables,
      replace: (plan) => timed(() => backend.replace(plan), observe('replace')),
      update: (diff, plan) => timed(() => backend.update(diff, plan), observe('update')),
      drift: (expected, changing) => backend.drift(expected, changing),
      readsWhileChanging: backend.readsWhileChanging,
      installed: () => backend.installed(),
      remove: () => backend.remove(),
      wouldHaveDropped: () => backend.wouldHaveDropped(),
      show: () => backend.show(),
    };
  }
}

/**
 * Times `run` from its call on, so what it does before its first await (a body's parse, a table's
 * render) counts too; `observe` is told its outcome, and the value when it settled with one.
 */
async function timed<T>(run: () => Promise<T>, observe: (seconds: number, outcome: 'ok' | 'failed', value?: T) => void): Promise<T> {
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  try {
    const value = await run();
    observe(seconds(), 'ok', value);
    return value;
  } catch (error) {
    observe(seconds(), 'failed');
    throw error;
  }
}
