import type { CisReport, CisStatus } from '../domain/cis/report.js';
import type { CheckReport } from './check.js';
import type { Paint, Style } from './colour.js';
import { printable } from './printable.js';

const STATUS_STYLE: Readonly<Record<CisStatus, Style>> = { PASS: 'green', WARN: 'red', NOTE: 'yellow', 'N/A': 'dim' };

/**
 * `check --cis` for a person, laid out as docker-bench-security lays out its log: one line per item,
 * then one indented line per failing container. Container names and messages are `printable` first.
 * `execsSeen`: the line saying what the privileged-exec item could see, or ''.
 */
export function renderCis(policy: CheckReport['policy'], report: CisReport, execsSeen: string, paint: Paint): string {
  const { benchmark: b } = report;
  const tag = (status: CisStatus) => paint(STATUS_STYLE[status], `[${status}]`) + ' '.repeat(5 - status.length);
  const lines = [
    `${b.name} v${b.version} (numbered as ${b.numbering}): ${report.containers} running container${report.containers === 1 ? '' : 's'}, policy ${printable(policy.file)} (${policy.mode})`,
    '',
  ];
  for (const item of report.items) {
    const decidedBy = item.check === null ? '' : ` [${item.check}]`;
    const reason = item.reason === null ? '' : `: ${item.reason}`;
    lines.push(`${tag(item.status)}${item.id.padEnd(5)} - ${item.title}${decidedBy}${reason}`);
    for (const c of item.failing) lines.push(`${tag(item.status)}      * ${printable(c.name)} (${printable(c.id.slice(0, 12))}): ${printable(c.message)}`);
  }
  const counts = (Object.keys(report.counts) as CisStatus[]).map((s) => `${report.counts[s]} ${s}`).join(', ');
  lines.push('', `${report.items.length} items: ${counts}`);
  return `${lines.join('\n')}\n${execsSeen}`;
}
