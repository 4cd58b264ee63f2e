import t from 'tap';
import { renderCheck, type CheckReport } from '../../src/cli/check.js';
import { colourWanted, painter } from '../../src/cli/colour.js';
import { renderStatus, type StatusReport } from '../../src/cli/status.js';

const ESC = '\u001b';
const hostile = `web${ESC}]0;owned${ESC}\\${ESC}[2J\nFAKE`;

const check: CheckReport = {
  policy: { file: '/etc/dockwarden/policy.yaml', hash: 'h', mode: 'enforce' },
  containers: 1,
  privilegedExecs: null,
  findings: [{ container: { id: 'c0ffee1234567890', name: hostile, image: 'x' }, check: 'privileged', severity: 'critical', action: 'kill', message: `runs privileged ${ESC}[31m`, details: {} }],
};
const status: StatusReport = {
  firewall: { backend: 'nftables', inSync: false, drift: `set differs ${ESC}[2J` },
  containers: [{ id: 'c0ffee1234567890', name: hostile, ports: [{ port: '8080/tcp', containerPort: 80, rule: null, allow: [`198.51.100.7${ESC}[2J`], note: null }] }],
  relabels: [],
};

t.test('colour only on a terminal, never with NO_COLOR set to anything non-empty or TERM=dumb', async (t) => {
  t.equal(colourWanted(true, {}), true);
  t.equal(colourWanted(false, {}), false, 'a pipe or file: no colour');
  t.equal(colourWanted(true, { NO_COLOR: '1' }), false);
  t.equal(colourWanted(true, { NO_COLOR: 'false' }), false, 'any non-empty value disables');
  t.equal(colourWanted(true, { NO_COLOR: '' }), true, 'an empty NO_COLOR is as if unset (no-color.org)');
  t.equal(colourWanted(true, { TERM: 'dumb' }), false);
});

t.test('without colour the tables hold no escape at all; container text is shown escaped', async (t) => {
  const plain = painter(false);
  for (const text of [renderCheck(check, plain), renderStatus(status, plain)]) {
    t.notMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, 'no control character but the line ends');
    t.match(text, 'web\\x1b]0;owned\\x1b\\\\x1b[2J\\x0aFAKE', 'the hostile name, escaped');
  }
  t.match(renderStatus(status, plain), 'NOT in sync: set differs \\x1b[2J');
  t.match(renderStatus(status, plain), '198.51.100.7\\x1b[2J');
});

t.test('with colour: only our own SGR sequences, columns still aligned', async (t) => {
  const colour = painter(true);
  for (const text of [renderCheck(check, colour), renderStatus(status, colour)]) {
    t.match(text, `${ESC}[`, 'coloured');
    t.notMatch(text.replace(/\u001b\[\d+m/g, ''), /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, 'every escape is one of ours (SGR), none from the container');
  }
  const strip = (s: string) => s.replace(/\u001b\[\d+m/g, '');
  t.equal(strip(renderCheck(check, colour)), renderCheck(check, painter(false)), 'colour adds styles and nothing else (widths unchanged)');
  t.equal(strip(renderStatus(status, colour)), renderStatus(status, painter(false)));
  t.match(renderCheck(check, colour), `${ESC}[31mcritical${ESC}[0m`, 'a critical finding in red');
  t.match(renderCheck({ ...check, findings: [] }, colour), `${ESC}[32mno violations${ESC}[0m`);
});
