import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FirewallBackend } from '../adapters/firewall/backend.js';
import type { QueueCounters } from './keyed-queue.js';
import type { Alerter } from './alerts/alerter.js';
import type { Tracked } from './reconciler.js';

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

/**
 * The daemon's Prometheus metrics (prom-client, its own registry: nothing global). State that
 * already exists (tracked containers, the queue) is read at scrape time; events the daemon sees
 * are counted as they happen through the methods below.
 */
export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly events = new Counter({ name: 'dockwarden_docker_events_total', help: 'Docker container events received, by action.', labelNames: ['action'], registers: [this.registry] });
  private readonly actions = new Counter({
    name: 'dockwarden_container_actions_total',
    help: 'Stops and kills of violating containers, by action and outcome (done, failed).',
    labelNames: ['action', 'outcome'],
    registers: [this.registry],
  });
  private readonly bridgeFailures = new Counter({
    name: 'dockwarden_bridge_filter_failures_total',
    help: 'Containers whose bridge ports could not be found or filtered (each time a sync failed); they run unfiltered until one succeeds.',
    registers: [this.registry],
  });
  private readonly applies = new Histogram({
    name: 'dockwarden_firewall_apply_seconds',
    help: 'Firewall transactions (update: set elements; replace: the whole ruleset), by kind and outcome.',
    labelNames: ['kind', 'outcome'],
    buckets: APPLY_BUCKETS,
    registers: [this.registry],
  });
  private readonly reconciles = new Histogram({
    name: 'dockwarden_reconcile_seconds',
    help: 'Full reconciles (list, inspect and judge every container), by outcome.',
    labelNames: ['outcome'],
    buckets: RECONCILE_BUCKETS,
    registers: [this.registry],
  });

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    new Gauge({
      name: 'dockwarden_containers_watched',
      help: 'Containers dockwarden currently judges (running or not).',
      registers,
      collect() {
        this.set(sources.tracked().size);
      },
    });
    new Gauge({
      name: 'dockwarden_violations',
      help: 'Current violations across watched containers, by check.',
      labelNames: ['check'],
      registers,
      collect() {
        this.reset();
        for (const { decision } of sources.tracked().values()) for (const v of decision.violations) this.inc({ check: v.check });
      },
    });
    new Gauge({
      name: 'dockwarden_queue_depth',
      help: 'Container tasks waiting or running.',
      registers,
      collect() {
        this.set(sources.queue().depth);
      },
    });
    new Counter({
      name: 'dockwarden_queue_tasks_total',
      help: 'Container tasks by outcome: enqueued, coalesced (absorbed by a waiting twin), dropped (queue full), completed, failed.',
      labelNames: ['outcome'],
      registers,
      collect() {
        this.reset();
        for (const [outcome, count] of Object.entries(sources.queue().counters)) this.inc({ outcome }, count);
      },
    });
    new Counter({
      name: 'dockwarden_alert_deliveries_total',
      help: 'Alert deliveries per sink: delivered, or failed attempts (each retried until delivered or dropped by the queue bound).',
      labelNames: ['sink', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const sink of sources.alertSinks()) {
          this.inc({ sink: sink.name, outcome: 'delivered' }, sink.delivered);
          this.inc({ sink: sink.name, outcome: 'failed' }, sink.failures);
        }
      },
    });
    new Counter({
      name: 'dockwarden_alerts_total',
      help: 'Alerts raised, by check (daemon.firewall-drift-repaired, daemon.docker-unreachable, privileged, ...); repeats folded by the dedupe window are not counted.',
      labelNames: ['check'],
      registers,
      collect() {
        this.reset();
        for (const [check, count] of sources.alertsRaised()) this.inc({ check }, count);
      },
    });
    new Gauge({
      name: 'dockwarden_ready',
      help: '1 once the daemon has told systemd it is ready (after the first reconcile, or with Docker unreachable), else 0.',
      registers,
      collect() {
        this.set(sources.daemon().ready ? 1 : 0);
      },
    });
    new Gauge({
      name: 'dockwarden_docker_up',
      help: '1 while the Docker engine answers (event stream connected), 0 while it is unreachable.',
      registers,
      collect() {
        this.set(sources.daemon().dockerUp ? 1 : 0);
      },
    });
    new Gauge({
      name: 'dockwarden_alert_queue',
      help: 'Alerts waiting on disk per sink.',
      labelNames: ['sink'],
      registers,
      collect() {
        this.reset();
        for (const sink of sources.alertSinks()) this.set({ sink: sink.name }, sink.queued);
      },
    });
  }

  dockerEvent(action: string): void {
    this.events.inc({ action });
  }

  containerAction(action: 'stop' | 'kill', outcome: 'done' | 'failed'): void {
    this.actions.inc({ action, outcome });
  }

  bridgeFilterFailed(): void {
    this.bridgeFailures.inc();
  }

  /** Times the promise a reconcile returns, whatever its outcome. */
  reconcile<T>(run: Promise<T>): Promise<T> {
    return timed(run, (seconds, outcome) => this.reconciles.observe({ outcome }, seconds));
  }

  /** The same backend, each update and replace timed. */
  measured(backend: FirewallBackend): FirewallBackend {
    const observe = (kind: 'update' | 'replace') => (seconds: number, outcome: string) => this.applies.observe({ kind, outcome }, seconds);
    return {
      name: backend.name,
      replace: (plan) => timed(backend.replace(plan), observe('replace')),
      update: (diff, plan) => timed(backend.update(diff, plan), observe('update')),
      drift: (expected, changing) => backend.drift(expected, changing),
      readsWhileChanging: backend.readsWhileChanging,
      installed: () => backend.installed(),
      remove: () => backend.remove(),
      wouldHaveDropped: () => backend.wouldHaveDropped(),
      show: () => backend.show(),
    };
  }
}

async function timed<T>(run: Promise<T>, observe: (seconds: number, outcome: 'ok' | 'failed') => void): Promise<T> {
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  try {
    const value = await run;
    observe(seconds(), 'ok');
    return value;
  } catch (error) {
    observe(seconds(), 'failed');
    throw error;
  }
}
