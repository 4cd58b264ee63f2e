import t from 'tap';
import { compileGlob } from '../../src/domain/glob.js';

const matches = (pattern: string, value: string) => compileGlob(pattern).test(value);

t.test('* matches within one path segment, ** across segments', async (t) => {
  t.ok(matches('docker.io/library/*', 'docker.io/library/nginx:1.25'));
  t.notOk(matches('docker.io/library/*', 'docker.io/library/team/nginx:1'));
  t.ok(matches('registry.example.com/team/**', 'registry.example.com/team/a/b/c:1'));
  t.ok(matches('**', 'any/thing/at/all'));
  t.ok(matches('grafana*', 'grafana'), '* may match nothing');
  t.ok(matches('*', ''));
  t.notOk(matches('*', 'a/b'));
  t.ok(matches('a/**/z', 'a/b/c/z'));
  t.ok(matches('***', 'a/b'), 'a run of three stars is **');
  t.ok(matches('a**', 'a'), '** may match nothing');
});

t.test('? is exactly one character, never /', async (t) => {
  t.ok(matches('web-?', 'web-1'));
  t.notOk(matches('web-?', 'web-'));
  t.notOk(matches('web-?', 'web-12'));
  t.notOk(matches('a?b', 'a/b'));
  t.ok(matches('?', '🐳'), 'one code point, not one UTF-16 unit');
});

t.test('everything else is literal, anchored and case-sensitive', async (t) => {
  for (const literal of ['a.b', 'a+b', '(a)', '[ab]', 'a\\b', '^a$', 'a|b', 'a{1}']) t.ok(matches(literal, literal), literal);
  t.notOk(matches('a.b', 'axb'), '. is not a wildcard');
  t.notOk(matches('[ab]', 'a'), 'no character classes');
  t.notOk(matches('nginx', 'my-nginx'), 'anchored at the start');
  t.notOk(matches('nginx', 'nginx-2'), 'anchored at the end');
  t.notOk(matches('Grafana*', 'grafana'));
});

t.test('keeps its pattern for messages and explain output', async (t) => {
  t.equal(compileGlob('web-*').pattern, 'web-*');
});

t.test('refuses an empty pattern', async (t) => {
  t.throws(() => compileGlob(''), RangeError);
});

t.test('matching time is linear in the value, whatever the pattern', async (t) => {
  // A backtracking RegExp for this pattern already needs seconds for 40 characters; 20 000 would never end.
  const glob = compileGlob(`${'*a'.repeat(12)}b`);
  const started = performance.now();
  t.notOk(glob.test('a'.repeat(20_000)));
  t.ok(performance.now() - started < 2000, `took ${Math.round(performance.now() - started)} ms`);
});
