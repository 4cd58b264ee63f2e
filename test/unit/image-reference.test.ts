import t from 'tap';
import { parseImageReference } from '../../src/domain/image-reference.js';

const SHA256 = 'sha256:' + 'a'.repeat(64);
const SHA512 = 'sha512:' + '0123456789abcdef'.repeat(8);

/** [given, normalised, familiar] — expectations as `docker` (distribution/reference) normalises them. */
const VALID: ReadonlyArray<readonly [string, string, string]> = [
  ['nginx', 'docker.io/library/nginx:latest', 'nginx:latest'],
  ['nginx:1.27-alpine', 'docker.io/library/nginx:1.27-alpine', 'nginx:1.27-alpine'],
  ['library/nginx', 'docker.io/library/nginx:latest', 'nginx:latest'],
  ['docker.io/nginx', 'docker.io/library/nginx:latest', 'nginx:latest'],
  ['docker.io/library/nginx:1', 'docker.io/library/nginx:1', 'nginx:1'],
  ['index.docker.io/nginx', 'docker.io/library/nginx:latest', 'nginx:latest'],
  ['index.docker.io/user/app:2', 'docker.io/user/app:2', 'user/app:2'],
  // only index.docker.io is an alias of docker.io
  ['registry-1.docker.io/library/nginx', 'registry-1.docker.io/library/nginx:latest', 'registry-1.docker.io/library/nginx:latest'],
  ['user/app', 'docker.io/user/app:latest', 'user/app:latest'],
  ['user/team/app:v1', 'docker.io/user/team/app:v1', 'user/team/app:v1'],
  // nested under library/: not an official image, keeps its prefix in the familiar form
  ['library/a/b', 'docker.io/library/a/b:latest', 'library/a/b:latest'],
  ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
  ['localhost:5000/app:dev', 'localhost:5000/app:dev', 'localhost:5000/app:dev'],
  // without a slash nothing is a registry: this is docker.io/library/localhost tagged 5000
  ['localhost:5000', 'docker.io/library/localhost:5000', 'localhost:5000'],
  ['localhost', 'docker.io/library/localhost:latest', 'localhost:latest'],
  ['localhost/team/app:1', 'localhost/team/app:1', 'localhost/team/app:1'],
  // an upper-case localhost is a registry by its case, not by its name
  ['LOCALHOST/app', 'LOCALHOST/app:latest', 'LOCALHOST/app:latest'],
  [`localhost:5000/team/app:2@${SHA256}`, `localhost:5000/team/app:2@${SHA256}`, `localhost:5000/team/app:2@${SHA256}`],
  ['example.com/app', 'example.com/app:latest', 'example.com/app:latest'],
  ['registry.example.com:5000/team/app:2', 'registry.example.com:5000/team/app:2', 'registry.example.com:5000/team/app:2'],
  [`127.0.0.1:5000/team/app@${SHA256}`, `127.0.0.1:5000/team/app@${SHA256}`, `127.0.0.1:5000/team/app@${SHA256}`],
  [`docker.io/library/busybox:1@${SHA256}`, `docker.io/library/busybox:1@${SHA256}`, `busybox:1@${SHA256}`],
  [`someone/busybox:1@${SHA256}`, `docker.io/someone/busybox:1@${SHA256}`, `someone/busybox:1@${SHA256}`],
  // a short image id is a name to the parser; the image check tells the two apart with the image's id
  ['0123abcd', 'docker.io/library/0123abcd:latest', '0123abcd:latest'],
  ['example.com:443/team/app:1.0', 'example.com:443/team/app:1.0', 'example.com:443/team/app:1.0'],
  ['registry:5000/app', 'registry:5000/app:latest', 'registry:5000/app:latest'],
  ['127.0.0.1:5000/app', '127.0.0.1:5000/app:latest', '127.0.0.1:5000/app:latest'],
  ['[::1]:5000/app', '[::1]:5000/app:latest', '[::1]:5000/app:latest'],
  ['[2001:db8::1]/app:x', '[2001:db8::1]/app:x', '[2001:db8::1]/app:x'],
  // the host may have upper case; an upper-case first component is taken as a host
  ['Registry.Example.COM/app', 'Registry.Example.COM/app:latest', 'Registry.Example.COM/app:latest'],
  ['Foo/bar', 'Foo/bar:latest', 'Foo/bar:latest'],
  // tags may have upper case, dots, dashes, underscores
  ['app:V1.2_rc-3', 'docker.io/library/app:V1.2_rc-3', 'app:V1.2_rc-3'],
  ['app:_x', 'docker.io/library/app:_x', 'app:_x'],
  ['a' + ':' + 'T'.repeat(128), 'docker.io/library/a:' + 'T'.repeat(128), 'a:' + 'T'.repeat(128)],
  // separators: one dot, one or two underscores, any dashes
  ['my.app_x__y---z', 'docker.io/library/my.app_x__y---z:latest', 'my.app_x__y---z:latest'],
  // digests: no default tag when a digest is given; tag and digest are both kept
  [`nginx@${SHA256}`, `docker.io/library/nginx@${SHA256}`, `nginx@${SHA256}`],
  [`nginx:1.27@${SHA256}`, `docker.io/library/nginx:1.27@${SHA256}`, `nginx:1.27@${SHA256}`],
  [`quay.io/org/app@${SHA512}`, `quay.io/org/app@${SHA512}`, `quay.io/org/app@${SHA512}`],
  // a bare `sha256` name with a tag that is not an id (63 hex digits)
  ['sha256:' + 'a'.repeat(63), 'docker.io/library/sha256:' + 'a'.repeat(63), 'sha256:' + 'a'.repeat(63)],
  // the repository path may be 255 characters; the registry is not counted
  ['example.com/' + 'a'.repeat(255), 'example.com/' + 'a'.repeat(255) + ':latest', 'example.com/' + 'a'.repeat(255) + ':latest'],
];

/** [given, fragment of the error] */
const INVALID: ReadonlyArray<readonly [string, string | RegExp]> = [
  ['', 'invalid reference format'],
  ['Nginx', 'must be lowercase'],
  ['user/App', 'must be lowercase'],
  ['example.com/Team/app', 'must be lowercase'],
  ['localhost:5000/App:1', 'must be lowercase'],
  ['localhost/App', 'must be lowercase'],
  ['localhost:/app', /registry "localhost:"/],
  ['example.com:5000:1/app', /registry "example.com:5000:1"/],
  [`nginx@${SHA256}:1`, 'invalid reference format'],
  [`nginx@${SHA256}@${SHA256}`, 'invalid reference format'],
  [`Nginx@${SHA256}`, 'must be lowercase'],
  ['nginx:', 'invalid reference format'],
  ['nginx:-tag', 'invalid reference format'],
  ['nginx:.tag', 'invalid reference format'],
  ['a:' + 'T'.repeat(129), 'invalid reference format'],
  ['nginx:a/b', 'invalid reference format'],
  ['nginx@', 'invalid reference format'],
  ['nginx@sha256', 'invalid reference format'],
  ['-app', 'invalid reference format'],
  ['app-', 'invalid reference format'],
  ['a..b', 'invalid reference format'],
  ['a___b', 'invalid reference format'],
  ['a//b', 'invalid reference format'],
  ['user/app/', 'invalid reference format'],
  ['example.com/', 'invalid reference format'],
  ['example.com:port/app', /registry "example.com:port"/],
  ['-bad.example.com/app', /registry "-bad.example.com"/],
  ['[::1/app', /registry/],
  ['[fe80::1%eth0]:5000/app', /registry/],
  // a valid path component that is no host: docker would give it an empty registry
  ['a_b.c/app', /registry "a_b.c"/],
  ['app name', 'invalid reference format'],
  ['app\n', 'invalid reference format'],
  ['example.com/' + 'a'.repeat(256), 'not be more than 255 characters'],
  ['a'.repeat(240) + '/' + 'b'.repeat(20), 'not be more than 255 characters'],
  // digests: a known algorithm, lower-case hex of the exact length
  ['nginx@sha256:' + 'a'.repeat(63), 'invalid digest length'],
  ['nginx@sha256:' + 'A'.repeat(64), 'invalid digest format'],
  ['nginx@md5:' + 'a'.repeat(32), 'unsupported digest algorithm'],
  ['nginx@constructor:' + 'a'.repeat(64), 'unsupported digest algorithm'],
  ['nginx@sha256:' + 'g'.repeat(64), 'invalid reference format'],
  ['nginx@sha256:' + 'a'.repeat(31), 'invalid reference format'],
  // image ids, not names
  ['a'.repeat(64), 'is an image id'],
  [SHA256, 'is an image id'],
];

t.test('valid references normalise as docker does', async (t) => {
  for (const [given, normalised, familiar] of VALID) {
    const result = parseImageReference(given);
    if (!result.ok) {
      t.fail(`${given}: ${result.error}`);
      continue;
    }
    t.equal(result.ref.normalised, normalised, `${given} normalised`);
    t.equal(result.ref.familiar, familiar, `${given} familiar`);
  }
});

t.test('invalid references are rejected with a reason', async (t) => {
  for (const [given, reason] of INVALID) {
    const result = parseImageReference(given);
    t.notOk(result.ok, `${JSON.stringify(given.slice(0, 40))} is invalid`);
    if (!result.ok) t.match(result.error, reason, `${JSON.stringify(given.slice(0, 40))}: ${result.error.slice(0, 100)}`);
  }
});

t.test('fields of a parsed reference', async (t) => {
  t.same(parseImageReference('nginx'), {
    ok: true,
    ref: {
      registry: 'docker.io',
      path: 'library/nginx',
      tag: 'latest',
      digest: undefined,
      official: true,
      normalised: 'docker.io/library/nginx:latest',
      familiar: 'nginx:latest',
    },
  });
  t.same(parseImageReference(`localhost:5000/team/app:1@${SHA256}`), {
    ok: true,
    ref: {
      registry: 'localhost:5000',
      path: 'team/app',
      tag: '1',
      digest: SHA256,
      official: false,
      normalised: `localhost:5000/team/app:1@${SHA256}`,
      familiar: `localhost:5000/team/app:1@${SHA256}`,
    },
  });
  const digestOnly = parseImageReference(`user/app@${SHA256}`);
  t.ok(digestOnly.ok && digestOnly.ref.tag === undefined, 'no tag for a digest-only reference');
});

t.test('official means docker.io/library/<name> only', async (t) => {
  const official = (text: string) => {
    const result = parseImageReference(text);
    return result.ok && result.ref.official;
  };
  t.ok(official('nginx'));
  t.ok(official('index.docker.io/library/nginx:1'));
  t.notOk(official('user/nginx'));
  t.notOk(official('library/a/b'));
  t.notOk(official('example.com/library/nginx'));
  t.notOk(official('registry-1.docker.io/library/nginx'));
});

t.test('error messages quote the untrusted input', async (t) => {
  const result = parseImageReference('bad\u001b[31m\nname');
  t.notOk(result.ok);
  if (!result.ok) t.notMatch(result.error, /[\n\u001b]/, 'no raw control characters');
});

t.test('long adversarial input is rejected quickly (no regex backtracking blow-up)', async (t) => {
  const inputs = ['a'.repeat(50_000) + '!', 'a-'.repeat(25_000) + '!', 'a.'.repeat(25_000) + '/x!', 'x.y/' + 'a__'.repeat(15_000) + '-'];
  for (const input of inputs) {
    const started = performance.now();
    t.notOk(parseImageReference(input).ok);
    t.ok(performance.now() - started < 200, `${input.slice(0, 8)}… took ${(performance.now() - started).toFixed(1)} ms`);
  }
});
