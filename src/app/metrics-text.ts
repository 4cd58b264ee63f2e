/**
 * The Prometheus text exposition format (version 0.0.4), written by hand: the few counters, gauges and
 * histograms the daemon serves do not need a client library (prom-client and @opentelemetry/api cost
 * ~10 MiB of memory and ~0.1 s of start-up). The output is what prom-client wrote for the same metrics.
 */
export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  /** The family's name with a suffix (`_bucket`, `_sum`, `_count`); the family's own name when absent. */
  readonly name?: string;
  readonly labels?: Labels;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly samples: readonly Sample[];
}

export function exposition(families: readonly Family[]): string {
  return `${families.map(familyText).join('\n\n')}\n`;
}

function familyText({ name, help, type, samples }: Family): string {
  const lines = [`# HELP ${name} ${escaped(help)}`, `# TYPE ${name} ${type}`];
  for (const s of samples) lines.push(`${s.name ?? name}${labelsText(s.labels)} ${valueText(s.value)}`);
  return lines.join('\n');
}

function labelsText(labels: Labels | undefined): string {
  const parts = Object.entries(labels ?? {}).map(([k, v]) => `${k}="${escaped(v).replace(/"/g, '\\"')}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

const escaped = (text: string): string => text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function valueText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  return String(value);
}

/** Values by label set, in the order first seen (a counter's or a gauge's series). */
export class Series {
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  add(labels: Labels, by = 1): void {
    const key = JSON.stringify(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }

  samples(): Sample[] {
    return [...this.values.values()].map(({ labels, value }) => ({ labels, value }));
  }
}

/** Observations by label set, counted into cumulative buckets (upper bounds in seconds), with sum and count. */
export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  constructor(private readonly bounds: readonly number[]) {}

  observe(labels: Labels, value: number): void {
    const key = JSON.stringify(labels);
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels, counts: this.bounds.map(() => 0), sum: 0, count: 0 }));
    const bucket = this.bounds.findIndex((bound) => value <= bound);
    if (bucket >= 0) s.counts[bucket]! += 1;
    s.sum += value;
    s.count += 1;
  }

  samples(name: string): Sample[] {
    return [...this.series.values()].flatMap(({ labels, counts, sum, count }) => {
      let cumulative = 0;
      return [
        ...this.bounds.map((bound, i) => ({ name: `${name}_bucket`, labels: { le: String(bound), ...labels }, value: (cumulative += counts[i]!) })),
        { name: `${name}_bucket`, labels: { le: '+Inf', ...labels }, value: count },
        { name: `${name}_sum`, labels, value: sum },
        { name: `${name}_count`, labels, value: count },
      ];
    });
  }
}
