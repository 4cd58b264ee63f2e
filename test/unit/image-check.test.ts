import t from 'tap';
import { imageViolations, judgeImage } from '../../src/domain/checks/image.js';
import { evaluate } from '../../src/domain/evaluate.js';
import type { ImageFacts } from '../../src/domain/facts.js';
import { parseImageReference } from '../../src/domain/image-reference.js';
import { compareSpecificity, patternSpecificity } from '../../src/domain/image-specificity.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { formatPolicyError } from '../../src/domain/policy/result.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { makeFacts } from '../helpers/facts.js';

const yaml = (...lines: string[]) => `${lines.join('\n')}\n`;

function policy(...lines: string[]): Policy {
  const result = parsePolicy(yaml('version: 1', ...lines), 'policy.yaml');
  if (!result.ok) throw new Error(result.errors.map(formatPolicyError).join('\n'));
  return result.policy;
}

function errors(...lines: string[]): string[] {
  const result = parsePolicy(yaml('version: 1', ...lines), 'policy.yaml');
  return result.ok ? [] : result.errors.map(formatPolicyError);
}

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const PULLED = `sha256:${'9'.repeat(64)}`;
const IMAGE_ID = `sha256:${'ab'.repeat(32)}`;

/**
 * Facts of a container created with `reference`, whose image has these names. Unless the test gives
 * `repoDigests`, the image was pulled as `reference`: it has a repo digest in that repository (the
 * reference's own digest, or another).
 */
function created(reference: string, image: Partial<Omit<ImageFacts, 'reference'>> = {}, name = 'web') {
  return makeFacts({ name, image: { reference, id: IMAGE_ID, repoTags: [], repoDigests: pulledAs(reference), ...image } });
}

function pulledAs(reference: string): string[] {
  const parsed = parseImageReference(reference);
  return parsed.ok ? [`${parsed.ref.registry}/${parsed.ref.path}@${parsed.ref.digest ?? PULLED}`] : [];
}

/** [reason, rule] of the one violation, or 'allowed'. */
function outcome(p: Policy, facts: ReturnType<typeof makeFacts>): string | [unknown, unknown] {
  const violations = imageViolations(p.images, facts);
  if (violations.length > 1) return `${violations.length} violations`;
  return violations[0] ? [violations[0].details.reason, violations[0].details.rule] : 'allowed';
}

const DENY = policy(
  'images:',
  '  default: deny',
  '  action: kill',
  '  severity: high',
  '  rules:',
  '    - match: official',
  '    - match: "registry.example.com:5000/team/**"',
  '    - match: "127.0.0.1:*/team/**"',
  '      require: { digest-pinned: true }',
  '  exceptions:',
  '    - { container: "build-*" }',
);

t.test('official shorthand: docker.io/library/<name> only', async (t) => {
  t.equal(outcome(DENY, created('busybox:1')), 'allowed');
  t.equal(outcome(DENY, created('docker.io/library/busybox:1')), 'allowed');
  t.equal(outcome(DENY, created('index.docker.io/library/nginx')), 'allowed');
  t.same(outcome(DENY, created('someone/busybox:1')), ['unofficial-namespace', 'images.default']);
  t.same(outcome(DENY, created('docker.io/library/a/b:1')), ['unofficial-namespace', 'images.default'], 'nested under library/ is not official');
});

t.test('registries and globs: `*` one segment, `**` any', async (t) => {
  t.equal(outcome(DENY, created('registry.example.com:5000/team/app:2')), 'allowed');
  t.equal(outcome(DENY, created('registry.example.com:5000/team/a/b/c:2')), 'allowed', '** crosses segments');
  t.same(outcome(DENY, created('registry.example.com:5000/other/app:2')), ['no-matching-rule', 'images.default'], 'registry covered, path not');
  t.same(outcome(DENY, created('registry.example.com/team/app:2')), ['registry-not-allowed', 'images.default'], 'the port is part of the registry');
  t.same(outcome(DENY, created('quay.io/team/app:2')), ['registry-not-allowed', 'images.default']);
  t.same(outcome(DENY, created('localhost/team/app:2')), ['registry-not-allowed', 'images.default']);
  const star = policy('images:', '  default: deny', '  rules: [{ match: "quay.io/*/app:*" }]');
  t.equal(outcome(star, created('quay.io/team/app:1')), 'allowed');
  t.same(outcome(star, created('quay.io/team/sub/app:1')), ['no-matching-rule', 'images.default'], '* stays within one segment');
});

t.test('digest pinning: the reference carries a digest, and the image has it for that repository', async (t) => {
  const repo = '127.0.0.1:5000/team/app';
  const pinned = created(`${repo}@${D1}`, { repoTags: [`${repo}:2`], repoDigests: [`${repo}@${D1}`] });
  t.equal(outcome(DENY, pinned), 'allowed');
  t.equal(outcome(DENY, created(`${repo}:2@${D1}`, { repoDigests: [`${repo}@${D1}`] })), 'allowed', 'tag and digest');
  t.same(outcome(DENY, created(`${repo}:2`, { repoTags: [`${repo}:2`], repoDigests: [`${repo}@${D1}`] })), ['not-digest-pinned', 'images.rules[2]']);
  t.same(outcome(DENY, created(`${repo}@${D2}`, { repoDigests: [`${repo}@${D1}`] })), ['digest-not-in-repo-digests', 'images.rules[2]'], 'another digest');
  t.same(
    outcome(DENY, created(`${repo}@${D1}`, { repoDigests: [`127.0.0.1:5000/elsewhere/app@${D1}`] })),
    ['no-matching-rule', 'images.default'],
    'the same digest in another repository proves nothing about this one: judged as where it came from',
  );
  t.same(outcome(DENY, created(`${repo}@${D1}`, { repoDigests: [] })), ['local-image', 'images.local'], 'image without repo digests: local');
  // Docker Hub repo digests are stored in their familiar form
  const hub = policy('images:', '  rules: [{ match: official, require: { digest-pinned: true } }]');
  t.equal(outcome(hub, created(`busybox@${D1}`, { repoDigests: [`busybox@${D1}`] })), 'allowed');
  t.equal(outcome(hub, created(`docker.io/library/busybox@${D1}`, { repoDigests: [`busybox@${D1}`] })), 'allowed');
});

t.test('the most specific pattern wins, whatever the order', async (t) => {
  const p = policy(
    'images:',
    '  default: allow',
    '  rules:',
    '    - match: "docker.io/**"',
    '      require: { digest-pinned: true }',
    '    - match: official',
    '    - match: "docker.io/library/nginx:*"',
    '      require: { digest-pinned: true }',
  );
  const judged = judgeImage(p.images, created('busybox:1')).names[0]!;
  t.same(judged.matchingRules.map((r) => r.index), [1, 0], 'official (prefix 18) before docker.io/** (prefix 10)');
  t.equal(judged.rule?.index, 1);
  t.equal(outcome(p, created('busybox:1')), 'allowed');
  t.same(outcome(p, created('nginx:1.27')), ['not-digest-pinned', 'images.rules[2]'], 'the exact name beats official');
  t.same(outcome(p, created('someone/app:1')), ['not-digest-pinned', 'images.rules[0]'], 'only the broad rule matches');
  t.equal(outcome(p, created('quay.io/x/y:1')), 'allowed', 'no rule: default allow');
});

t.test('specificity: prefix, then literals, then fewer **, then policy order', async (t) => {
  const order = (...patterns: string[]) =>
    patterns
      .map((pattern, index) => ({ pattern, index }))
      .sort((a, b) => compareSpecificity(patternSpecificity(a.pattern), patternSpecificity(b.pattern)) || a.index - b.index)
      .map((r) => r.pattern);
  t.same(order('docker.io/**', 'docker.io/library/*'), ['docker.io/library/*', 'docker.io/**']);
  t.same(order('docker.io/library/*', 'docker.io/library/*:1'), ['docker.io/library/*:1', 'docker.io/library/*']);
  t.same(order('docker.io/library/**', 'docker.io/library/*'), ['docker.io/library/*', 'docker.io/library/**']);
  t.same(order('**/app:1', 'quay.io/**'), ['quay.io/**', '**/app:1'], 'the registry counts first');
  t.same(order('quay.io/?/app', 'quay.io/*/app'), ['quay.io/?/app', 'quay.io/*/app'], 'equal: earlier first');
  t.same(order('quay.io/*/app', 'quay.io/?/app'), ['quay.io/*/app', 'quay.io/?/app'], 'equal: earlier first');
  t.same(patternSpecificity('docker.io/library/nginx:1.27'), { literalPrefix: 28, literals: 28, doubleStars: 0 });
});

t.test('images.default for names no rule matches', async (t) => {
  const allow = policy('images:', '  rules: [{ match: official }]');
  t.equal(allow.images.default, 'allow', 'allow is the default');
  t.equal(outcome(allow, created('someone/busybox:1')), 'allowed');
  const none = policy('images:', '  default: deny');
  t.same(outcome(none, created('busybox:1')), ['registry-not-allowed', 'images.default'], 'deny with no rules refuses everything');
});

t.test('exceptions by container match', async (t) => {
  t.equal(outcome(DENY, created('quay.io/x/y:1', {}, 'build-7')), 'allowed');
  const judged = judgeImage(DENY.images, created('quay.io/x/y:1', {}, 'build-7'));
  t.equal(judged.exception, 0);
  t.equal(judged.names[0]?.refusal, 'registry-not-allowed', 'still judged, for explain');
  t.same(outcome(DENY, created('quay.io/x/y:1', {}, 'web-7')), ['registry-not-allowed', 'images.default']);
  const byImage = policy('images:', '  default: deny', '  exceptions: [{ image: "quay.io/x/**" }, { label: { ci: "y*" } }]');
  t.equal(outcome(byImage, created('quay.io/x/y:1')), 'allowed');
  t.same(outcome(byImage, created('quay.io/x/y:1', { repoDigests: [] })), ['local-image', 'images.local'], 'a local image tagged quay.io/x/y is not excused by an image selector');
  t.same(outcome(byImage, created('quay.io/x/y:1', { repoDigests: [`quay.io/other/y@${D1}`] })), ['registry-not-allowed', 'images.default'], 'nor one pulled from elsewhere');
  t.equal(outcome(byImage, makeFacts({ labels: { ci: 'yes' }, image: { reference: 'quay.io/z:1', id: IMAGE_ID, repoTags: [], repoDigests: [] } })), 'allowed', 'a label selector excuses even a local image');
});

t.test('the violation names rule, pattern, reason and the normalised reference', async (t) => {
  const [violation] = imageViolations(DENY.images, created(`127.0.0.1:5000/team/app:2`));
  t.same(violation, {
    check: 'image',
    severity: 'high',
    action: 'kill',
    message:
      'image "127.0.0.1:5000/team/app:2" not allowed: images.rules[2] ("127.0.0.1:*/team/**") requires a digest-pinned reference, and the reference has no @sha256: digest',
    details: {
      rule: 'images.rules[2]',
      pattern: '127.0.0.1:*/team/**',
      reason: 'not-digest-pinned',
      reference: '127.0.0.1:5000/team/app:2',
      given: '127.0.0.1:5000/team/app:2',
      referencedBy: 'name',
      judgedAs: 'reference',
    },
  });
  const [hub] = imageViolations(DENY.images, created('someone/busybox'));
  t.equal(hub?.message, 'image "docker.io/someone/busybox:latest" not allowed: "docker.io/someone" is not the official namespace (docker.io/library) and no rule allows it; images.default is deny');
  const [registry] = imageViolations(DENY.images, created('quay.io/x/y:1'));
  t.equal(registry?.message, 'image "quay.io/x/y:1" not allowed: no rule allows the registry "quay.io"; images.default is deny');
  const [digest] = imageViolations(DENY.images, created(`127.0.0.1:5000/team/app@${D2}`, { repoDigests: [`127.0.0.1:5000/team/app@${D1}`] }));
  t.match(digest?.message, `${D2} is not among the image's repo digests for "127.0.0.1:5000/team/app"`);
});

t.test('evaluate() carries the image violation', async (t) => {
  t.same(evaluate(DENY, created('quay.io/x/y:1')).violations.map((v) => [v.check, v.details.reason]), [['image', 'registry-not-allowed']]);
  t.same(evaluate(DENY, created('busybox:1')).violations, []);
});

t.test('a reference that does not parse is a violation with the parser’s reason, even with default allow', async (t) => {
  const open = policy('images: {}');
  for (const reference of ['Nginx:1', 'nginx:', '', 'bad\u001b[31m\nname', 'a'.repeat(300)]) {
    const [violation, ...more] = imageViolations(open.images, created(reference));
    t.same(more, []);
    t.equal(violation?.details.reason, 'invalid-reference', JSON.stringify(reference.slice(0, 20)));
    t.equal(violation?.details.rule, null);
    t.match(violation?.message, /the reference does not parse: /);
    t.notMatch(violation?.message, /[\n\u001b]/, 'control characters stay quoted');
  }
});

t.test('referenced by image id: judged under every repo tag and digest the repo digests prove', async (t) => {
  const names = { repoTags: ['busybox:1', 'someone/busybox:1', 'quay.io/retagged/here:1'], repoDigests: [`busybox@${D1}`, `someone/busybox@${D1}`] };
  for (const reference of [IMAGE_ID, IMAGE_ID.slice('sha256:'.length), 'abababab', 'sha256:abab']) {
    const judged = judgeImage(DENY.images, created(reference, names));
    t.equal(judged.referencedBy, 'image id', reference);
    t.equal(judged.judgedAs, 'repo digests');
    t.same(judged.names.map((n) => [n.name, n.refusal]), [
      ['docker.io/library/busybox:1', null],
      ['docker.io/someone/busybox:1', 'unofficial-namespace'],
      [`docker.io/library/busybox@${D1}`, null],
      [`docker.io/someone/busybox@${D1}`, 'unofficial-namespace'],
    ], 'the tag no repo digest backs (quay.io/retagged/here) is not judged');
  }
  const [violation] = imageViolations(DENY.images, created('abababab', names));
  t.equal(
    violation?.message,
    'image referenced by image id "abababab", as "docker.io/someone/busybox:1", not allowed: "docker.io/someone" is not the official namespace (docker.io/library) and no rule allows it; images.default is deny',
  );
  t.same(violation?.details.referencedBy, 'image id');
  t.equal(outcome(DENY, created(IMAGE_ID, { repoTags: ['busybox:1', 'busybox:1.36'], repoDigests: [`busybox@${D1}`] })), 'allowed', 'all names allowed');
});

t.test('a short hex reference is a name when it is one, or not a prefix of the image id', async (t) => {
  // `docker run abab` with an image tagged abab:latest runs that image by name
  t.equal(judgeImage(DENY.images, created('abab', { repoTags: ['abab:latest'] })).referencedBy, 'name');
  t.equal(judgeImage(DENY.images, created('cdcd')).referencedBy, 'name');
  // without the id logic, `docker run <short id>` would pass as the official image docker.io/library/<hex>
  t.same(outcome(DENY, created('abab', { repoTags: ['quay.io/x/y:1'], repoDigests: [`quay.io/x/y@${D1}`] })), ['registry-not-allowed', 'images.default']);
});

t.test('image id: pinned, as every judged name is proven by a repo digest of the image', async (t) => {
  const repo = '127.0.0.1:5000/team/app';
  t.equal(outcome(DENY, created(IMAGE_ID, { repoTags: [`${repo}:2`], repoDigests: [`${repo}@${D1}`] })), 'allowed');
  const [violation] = imageViolations(DENY.images, created(IMAGE_ID, { repoTags: [`${repo}:2`], repoDigests: [] }));
  t.equal(violation?.details.reason, 'local-image', 'a tag alone: a local image');
});

t.test('image id of an image without repo digests: a local image, images.local decides', async (t) => {
  for (const repoTags of [[], ['busybox:1']]) {
    const [violation] = imageViolations(DENY.images, created(IMAGE_ID, { repoTags, repoDigests: [] }));
    t.same(violation?.details, {
      rule: 'images.local',
      pattern: null,
      reason: 'local-image',
      reference: IMAGE_ID,
      given: IMAGE_ID,
      referencedBy: 'image id',
      judgedAs: 'local',
    });
  }
  t.equal(outcome(policy('images: { default: allow }'), created(IMAGE_ID, { repoDigests: [] })), 'allowed', 'images.local is images.default when not given');
  t.same(outcome(policy('images: { default: allow, local: deny }'), created(IMAGE_ID, { repoDigests: [] })), ['local-image', 'images.local']);
});

t.test('invalid image patterns are located validation errors', async (t) => {
  t.same(errors('images:', '  rules:', '    - match: "nginx:*"', '    - match: ""', '    - match: 3', '    - { match: official, require: { signed: true } }', '    - match: "docker.io/library/nginx latest"'), [
    'policy.yaml:4:14: images.rules[0].match: "nginx:*" never matches: image patterns match the normalised reference registry/path:tag; did you mean "docker.io/library/nginx:*"?',
    'policy.yaml:5:14: images.rules[1].match: an empty pattern matches nothing; expected a glob, e.g. "docker.io/library/nginx:*"',
    'policy.yaml:6:14: images.rules[2].match: 3 is not an image pattern or "official"; quote it: "3"',
    'policy.yaml:7:37: images.rules[3].require: unknown key "signed"; expected one of: digest-pinned, signed-by, on-unreachable',
    'policy.yaml:8:14: images.rules[4].match: "docker.io/library/nginx latest" never matches: " " cannot appear in an image reference',
  ]);
});

t.test('the README example decides as the README says', async (t) => {
  const readme = policy(
    'images:',
    '  default: deny',
    '  action: kill',
    '  rules:',
    '    - match: official',
    '    - match: "registry.example.com:5000/team/**"',
    '    - match: "registry.example.com:5000/team/prod/*"',
    '      require: { digest-pinned: true }',
    '  exceptions:',
    '    - { container: "ci-build-*" }',
  );
  t.same(outcome(readme, created('registry.example.com:5000/team/prod/api:1')), ['not-digest-pinned', 'images.rules[2]']);
  t.equal(outcome(readme, created('registry.example.com:5000/team/web:1')), 'allowed');
  t.equal(judgeImage(readme.images, created('registry.example.com:5000/team/web:1')).names[0]?.rule?.index, 1);
  t.equal(outcome(readme, created('busybox:1@' + D1)), 'allowed', 'official covers a digest too');
  t.equal(outcome(readme, created('nginx@' + D1)), 'allowed');
  const tagOnly = policy('images:', '  default: deny', '  rules: [{ match: "docker.io/library/nginx:*" }, { match: "docker.io/library/nginx@*" }]');
  t.equal(outcome(tagOnly, created('nginx:1')), 'allowed');
  t.equal(outcome(tagOnly, created('nginx@' + D1)), 'allowed', 'the second rule covers digest-only references');
  t.same(outcome(policy('images:', '  default: deny', '  rules: [{ match: "docker.io/library/nginx:*" }]'), created('nginx@' + D1)), ['no-matching-rule', 'images.default']);
});

t.test('a name is not provenance: a local image tagged busybox:latest is local, not official', async (t) => {
  const retagged = created('busybox:latest', { repoTags: ['busybox:latest'], repoDigests: [] });
  const judged = judgeImage(DENY.images, retagged);
  t.equal(judged.judgedAs, 'local');
  t.same(judged.names.map((n) => [n.name, n.matchingRules.length, n.decidedBy, n.refusal]), [['docker.io/library/busybox:latest', 0, 'images.local', 'local-image']], 'official does not match it');
  t.equal(
    imageViolations(DENY.images, retagged)[0]?.message,
    'image "docker.io/library/busybox:latest" not allowed: the image has no repo digest (built, committed or loaded on this host, or a tag of such an image), so nothing shows where it came from; images.local is deny',
  );
  const localAllowed = policy('images:', '  default: deny', '  local: allow', '  rules: [{ match: official }]');
  t.equal(outcome(localAllowed, retagged), 'allowed', 'images.local: allow accepts local images, whatever their name');
  t.equal(localAllowed.images.local, 'allow');
  t.same(outcome(policy('images:', '  local: deny'), retagged), ['local-image', 'images.local'], 'images.local: deny refuses them under default allow');
});

t.test('pulled from one repository and tagged as another: judged as where it was pulled from', async (t) => {
  const retagged = created('busybox:latest', { repoTags: ['busybox:latest', 'quay.io/x/y:1'], repoDigests: [`quay.io/x/y@${D1}`] });
  const judged = judgeImage(DENY.images, retagged);
  t.equal(judged.judgedAs, 'repo digests');
  t.same(judged.names.map((n) => [n.name, n.refusal]), [['quay.io/x/y:1', 'registry-not-allowed'], [`quay.io/x/y@${D1}`, 'registry-not-allowed']]);
  t.equal(
    imageViolations(DENY.images, retagged)[0]?.message,
    'image "busybox:latest", which no repo digest backs, judged as "quay.io/x/y:1", not allowed: no rule allows the registry "quay.io"; images.default is deny',
  );
  const quay = policy('images:', '  default: deny', '  rules: [{ match: "quay.io/x/**" }]');
  t.equal(outcome(quay, retagged), 'allowed', 'a rule for where it came from allows it');
  const pinnedQuay = policy('images:', '  default: deny', '  rules: [{ match: "quay.io/x/**", require: { digest-pinned: true } }]');
  t.same(outcome(pinnedQuay, retagged), ['not-digest-pinned', 'images.rules[0]'], 'created by a tag: not pinned');
});

t.test('an image in two repositories: a proven name is judged as itself, an unproven one under both', async (t) => {
  const image = { repoTags: ['quay.io/team/app:1', 'quay.io/mirror/app:1', 'busybox:1'], repoDigests: [`quay.io/team/app@${D1}`, `quay.io/mirror/app@${D1}`] };
  const team = policy('images:', '  default: deny', '  rules: [{ match: "quay.io/team/**" }]');
  t.equal(outcome(team, created('quay.io/team/app:1', image)), 'allowed');
  t.same(outcome(team, created('quay.io/mirror/app:1', image)), ['no-matching-rule', 'images.default']);
  const unproven = judgeImage(team.images, created('busybox:1', image));
  t.same(unproven.names.map((n) => n.name), ['quay.io/team/app:1', 'quay.io/mirror/app:1', `quay.io/team/app@${D1}`, `quay.io/mirror/app@${D1}`]);
  t.equal(unproven.refused?.name, 'quay.io/mirror/app:1', 'every name must pass');
});
