import t from 'tap';
import { readFileSync } from 'node:fs';
import { OBSERVED_ALERTS, observedAlert, type ObservedAlert } from '../../src/domain/alerts/catalogue.js';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

t.test("the README's alert table is the catalogue: every entry, its severity and action, nothing else", async (t) => {
  // The table under its header, to the first line that is not a row.
  const table = README.slice(README.indexOf('| check | severity | action | raised when |')).split('\n').slice(2);
  const rows = table.slice(0, table.findIndex((line) => !line.startsWith('|')));
  const documented = rows.map((row) => /^\| `([a-z.-]+)` \| (\w+) \| (\w+) \| .+ \|$/.exec(row)?.slice(1, 4));
  t.same(documented, Object.entries(OBSERVED_ALERTS).map(([check, { severity, action }]) => [check, severity, action]));
});

t.test('an alert of the catalogue takes its severity and action from there', async (t) => {
  for (const check of Object.keys(OBSERVED_ALERTS) as ObservedAlert[]) {
    const input = observedAlert(check, 'said', { details: { x: 1 } });
    t.same(input, { check, severity: OBSERVED_ALERTS[check].severity, action: OBSERVED_ALERTS[check].action, message: 'said', details: { x: 1 } });
  }
});
