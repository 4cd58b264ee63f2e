import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { makeAlert, severityAtLeast, type Alert, type AlertContext, type AlertInput } from '../../domain/alerts/alert.js';
import type { QueuedSink } from './queued-sink.js';
import { observedAlert } from '../../domain/alerts/catalogue.js';

export type { AlertInput } from '../../domain/alerts/alert.js';

export interface AlerterOptions {
  readonly log: Logger;
  readonly sinks: readonly QueuedSink[];
  /** Host name, and the mode and hash of the policy in force when an alert is raised. */
  readonly context: () => AlertContext;
  /** Repeats of one check on one container within this window are folded into one "N suppressed" alert; 0 = off. */
  readonly dedupeWindowMs: number;
  readonly now?: () => number;
}

interface Window {
  readonly first: Alert;
  readonly endsAt: number;
  suppressed: number;
  last: AlertInput;
}

/**
 * The hub every alert goes through: folds repeats, writes the record to the log, and hands it to
 * each sink whose minimum severity it meets. Each sink's queue is on disk before `raise` returns.
 * A sink that had to drop records (its bound) gets an alert saying how many, at most once a second.
 */
export class Alerter {
  private readonly windows = new Map<string, Window>();
  private readonly droppedPending = new Map<QueuedSink, number>();
  private readonly droppedTotal = new Map<QueuedSink, number>();
  private readonly raisedByCheck = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly options: AlerterOptions) {
    this.now = options.now ?? Date.now;
    for (const sink of options.sinks) {
      this.noteDropped(sink, sink.queue.takeUnreadable());
      sink.start();
    }
    this.timer = setInterval(() => this.sweep(), 1000).unref();
  }

  /** Each sink's delivery counts and queue length, for metrics. */
  get sinks(): ReadonlyArray<{ readonly name: string; readonly delivered: number; readonly failures: number; readonly queued: number }> {
    return this.options.sinks.map((s) => ({ name: s.name, delivered: s.delivered, failures: s.failures, queued: s.queue.size }));
  }

  /** Alerts raised so far, by check, for metrics. */
  get raised(): ReadonlyMap<string, number> {
    return this.raisedByCheck;
  }

  /**
   * Raises an alert. Returns the record, or null when it was folded into an open dedupe window
   * (it then counts towards that window's "N suppressed" alert).
   */
  raise(input: AlertInput): Alert | null {
    // A container the gate refused never got an id: its name and image tell refusals apart.
    const container = input.container ? input.container.id || `${input.container.name}\0${input.container.image}` : '';
    const key = `${input.check}\0${container}`;
    const now = this.now();
    const open = this.windows.get(key);
    if (open && now < open.endsAt) {
      open.suppressed++;
      open.last = input;
      return null;
    }
    if (open) this.closeWindow(key, open);
    const alert = this.emit(input);
    if (this.options.dedupeWindowMs > 0) this.windows.set(key, { first: alert, endsAt: now + this.options.dedupeWindowMs, suppressed: 0, last: input });
    return alert;
  }

  /** SIGTERM: report open windows and drops, then wait up to `timeoutMs` for the sinks to deliver. What is left stays on disk. */
  async flush(timeoutMs: number): Promise<boolean> {
    for (const [key, window] of this.windows) this.closeWindow(key, window);
    this.reportDrops();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const done = await Promise.race([Promise.all(this.options.sinks.map((s) => s.idle())).then(() => true), timeout]);
    clearTimeout(timer);
    return done;
  }

  close(): void {
    clearInterval(this.timer);
    for (const sink of this.options.sinks) sink.close();
  }

  private emit(input: AlertInput): Alert {
    const alert = makeAlert(input, this.options.context(), new Date(this.now()), randomBytes(10));
    this.raisedByCheck.set(alert.check, (this.raisedByCheck.get(alert.check) ?? 0) + 1);
    // On disk first: an alert the log shows is one a crash cannot lose.
    for (const sink of this.options.sinks) if (severityAtLeast(alert.severity, sink.minSeverity)) this.push(sink, alert);
    this.log(alert);
    return alert;
  }

  /** Never throws: a queue that cannot be written (disk full, directory removed) counts as a drop and is reported. */
  private push(sink: QueuedSink, alert: Alert, countDrops = true): void {
    try {
      const dropped = sink.push(alert);
      if (countDrops) this.noteDropped(sink, dropped);
    } catch (error) {
      this.options.log.error({ sink: sink.name, alert: { id: alert.id }, err: error }, 'alert could not be queued');
      this.noteDropped(sink, 1);
    }
  }

  private log(alert: Alert): void {
    this.options.log[alert.severity === 'info' ? 'info' : 'warn']({ alert }, 'alert');
  }

  private closeWindow(key: string, window: Window): void {
    this.windows.delete(key);
    if (window.suppressed === 0) return;
    this.emit({
      ...window.last,
      message: `${window.suppressed} repeats of this alert suppressed`,
      details: { suppressed: window.suppressed, firstId: window.first.id, windowSeconds: this.options.dedupeWindowMs / 1000, last: window.last.details ?? {} },
    });
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, window] of this.windows) if (now >= window.endsAt) this.closeWindow(key, window);
    for (const sink of this.options.sinks) this.noteDropped(sink, sink.queue.takeUnreadable());
    this.reportDrops();
  }

  private noteDropped(sink: QueuedSink, count: number): void {
    if (count > 0) this.droppedPending.set(sink, (this.droppedPending.get(sink) ?? 0) + count);
  }

  /**
   * One alert per sink that dropped records, into that sink (its receiver is the one missing them,
   * whatever its minimum severity) and the log. The report's own push may push out one more: it
   * counts itself, so a full queue does not make reports about reports.
   */
  private reportDrops(): void {
    const pending = [...this.droppedPending];
    this.droppedPending.clear();
    for (const [sink, count] of pending) {
      const dropped = count + sink.queue.overflowOnPush;
      const total = (this.droppedTotal.get(sink) ?? 0) + dropped;
      this.droppedTotal.set(sink, total);
      const alert = makeAlert(
        observedAlert('daemon.alerts-dropped', 'alert queue full; oldest alerts dropped', { details: { sink: sink.name, dropped, droppedTotal: total } }),
        this.options.context(),
        new Date(this.now()),
        randomBytes(10),
      );
      this.push(sink, alert, false); // what it pushes out is already in `dropped`
      this.log(alert);
    }
  }
}
