import t from 'tap';
import { createToInspect, referencedBy } from '../../src/domain/gate/create-inspect.js';
import { CREATE_BODY } from '../../src/domain/gate/docker-shapes.js';
import { readAsGo } from '../../src/domain/gate/go-json.js';
import { parseJsonEntries } from '../../src/domain/gate/json-entries.js';
import { mayMoveImageNames, normaliseUri, routeRequest } from '../../src/domain/gate/route.js';

t.test('routing: every spelling of a judged endpoint is judged', async (t) => {
  t.same(routeRequest('POST', '/v1.41/containers/create?name=web'), { kind: 'create', name: 'web' });
  t.same(routeRequest('POST', '/containers/create'), { kind: 'create', name: null });
  t.same(routeRequest('POST', '//v1.41//containers/./x/../create/'), { kind: 'create', name: null });
  t.same(routeRequest('POST', '/v1.41/%63ontainers/create'), { kind: 'create', name: null }, 'percent-encoded');
  t.same(routeRequest('POST', '/v1.41/containers/a/b/start'), { kind: 'start', container: 'a/b', legacyBody: false }, 'names may hold /');
  t.same(routeRequest('POST', '/v1.23/containers/abc/start'), { kind: 'start', container: 'abc', legacyBody: true });
  t.same(routeRequest('POST', '/v1.24/containers/abc/start'), { kind: 'start', container: 'abc', legacyBody: false });
  t.same(routeRequest('POST', '/v1.9/containers/abc/start'), { kind: 'start', container: 'abc', legacyBody: true });
  t.same(routeRequest('POST', '/containers/abc/restart'), { kind: 'start', container: 'abc', legacyBody: false });
  t.same(routeRequest('POST', '/containers/abc/exec'), { kind: 'exec', container: 'abc' });
  t.same(routeRequest('POST', '/containers/abc/update'), { kind: 'update', container: 'abc' });
  t.same(routeRequest('POST', '/volumes/create'), { kind: 'volume-create' });
  t.same(routeRequest('POST', '/services/create'), { kind: 'service', endpoint: 'services/create' });
  t.same(routeRequest('POST', '/services/x/update'), { kind: 'service', endpoint: 'services/update' });
  t.same(routeRequest('POST', '/plugins/pull?remote=x'), { kind: 'plugin', endpoint: 'plugins/pull' });
  t.same(routeRequest('POST', '/plugins/x/enable'), { kind: 'plugin', endpoint: 'plugins/enable' });
  t.same(routeRequest('POST', '/v1.41/build?networkmode=host&t=x'), { kind: 'build', endpoint: 'build' });
  t.same(routeRequest('POST', '/session'), { kind: 'build', endpoint: 'session' }, "BuildKit's session");
  t.same(routeRequest('POST', '/v1.41/grpc'), { kind: 'build', endpoint: 'grpc' }, "BuildKit's API (buildx)");
  t.same(routeRequest('POST', '/build/prune'), { kind: 'other' }, 'pruning the build cache runs nothing');
  t.same(routeRequest('GET', '/containers/json'), { kind: 'other' });
  t.same(routeRequest('POST', '/containers/abc/kill'), { kind: 'other' });
  t.equal(routeRequest('POST', '/containers/%zz/start').kind, 'unreadable');
  t.equal(routeRequest('POST', '/containers/%00/start').kind, 'unreadable');
  t.equal(routeRequest('POST', `/${'a'.repeat(9000)}`).kind, 'unreadable');
  t.same(normaliseUri('/v1.41/containers/create?name=a&name=b'), { version: '1.41', path: '/containers/create', query: new URLSearchParams('name=a&name=b') });
});

t.test('requests that may move image names: every write to images, builds, commits; never a read', async (t) => {
  const moves: Array<[string, string]> = [
    ['POST', '/v1.41/images/busybox/tag?repo=web&tag=1'], ['DELETE', '/images/web:1?force=1'], ['POST', '/images/create?fromImage=web&tag=1'],
    ['POST', '/images/create?fromSrc=-&repo=web'], ['POST', '/images/load'], ['POST', '/images/prune'], ['POST', '/images/web/push'],
    ['POST', '/v1.41/build?t=web'], ['POST', '/commit?container=x&repo=web'], ['POST', '/session'], ['POST', '/grpc'],
    ['POST', '//v1.41//IMAGES/./web/tag'], ['POST', '/%69mages/web/tag'], ['post', '/images/web/tag'], ['POST', '/images/%zz/tag'],
  ];
  for (const [method, uri] of moves) t.ok(mayMoveImageNames(method, uri), `${method} ${uri}`);
  const stays: Array<[string, string]> = [
    ['GET', '/images/web/json'], ['HEAD', '/_ping'], ['GET', '/images/get?names=web'], ['POST', '/containers/create?name=images'],
    ['POST', '/containers/x/start'], ['DELETE', '/containers/x'], ['POST', '/volumes/create'], ['POST', '/imagesx'],
  ];
  for (const [method, uri] of stays) t.notOk(mayMoveImageNames(method, uri), `${method} ${uri}`);
});

t.test('JSON with every key kept, in order', async (t) => {
  t.same(parseJsonEntries('{"a":1,"b":[true,null,"x"],"a":{"c":-1.5e2}}'), {
    entries: [['a', 1], ['b', [true, null, 'x']], ['a', { entries: [['c', -150]] }]],
  });
  t.equal(parseJsonEntries(' "\\u00e9\\n" '), 'é\n');
  t.equal(parseJsonEntries('"é / \u212A"'), 'é / \u212A', 'without an escape: the text between the quotes, as written');
  t.equal(parseJsonEntries('"a\\"b\\\\c\\/"'), 'a"b\\c/', 'escaped quote, backslash and slash');
  for (const bad of ['', '{', '{"a"}', '[1,]', '{"a":1,}', '01', '"\u0001"', '{"a":1} x', 'tru', '[' .repeat(100) + ']'.repeat(100)]) {
    t.throws(() => parseJsonEntries(bad), { name: 'JsonSyntaxError' }, JSON.stringify(bad.slice(0, 20)));
  }
});

t.test('read as Go: keys fold case (and ſ, K), the last one wins, maps keep exact keys', async (t) => {
  const body = readAsGo(
    parseJsonEntries('{"image":"a","IMAGE":"b","Labels":{"X":"1","x":"2"},"hostconfig":{"privileged":true,"Privileged":false,"privileged":true,"capadd":"sys_admin","Bind\\u017f":["/etc:/x"],"Unknown":1}}'),
    CREATE_BODY,
  ) as Record<string, unknown>;
  t.equal(body.Image, 'b');
  t.same({ ...(body.Labels as object) }, { X: '1', x: '2' });
  const host = body.HostConfig as Record<string, unknown>;
  t.equal(host.Privileged, true);
  t.same(host.CapAdd, ['sys_admin'], 'a strslice may be one string');
  t.same(host.Binds, ['/etc:/x']);
  t.notOk('Unknown' in host, 'unknown keys are dropped');
  const kelvin = readAsGo(parseJsonEntries('{"Hostconfig":{"Lin\\u212As":["a"]}}'), CREATE_BODY) as { HostConfig: Record<string, unknown> };
  t.same(kelvin.HostConfig.Links, ['a'], 'KELVIN SIGN is k');
});

t.test('a create body as the inspect it would produce', async (t) => {
  const body = readAsGo(
    parseJsonEntries(JSON.stringify({
      Image: 'busybox',
      Labels: { a: '1' },
      HostConfig: {
        Binds: ['/etc:/e:ro', 'data:/d', 'anon', '/srv/x:/x:rw,z'],
        Mounts: [{ Type: 'volume', Source: 'v', Target: '/v', VolumeOptions: { DriverConfig: { Name: 'local', Options: { type: 'none', o: 'bind', device: '/' } } } }, { Type: 'tmpfs', Target: '/t' }],
        VolumesFrom: ['other:ro'],
        PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '8080' }] },
      },
    })),
    CREATE_BODY,
  ) as Record<string, unknown>;
  t.same(referencedBy(body), { volumes: ['data', 'v'], containers: ['other'] });
  const inspect = createToInspect(body, 'web', {
    image: { Id: 'sha256:img', Config: { User: 'app', Labels: { a: 'image', b: 'image' } } },
    volume: (name) => (name === 'data' ? { Driver: 'local', Mountpoint: '/var/lib/docker/volumes/data/_data' } : null),
    newVolumeMountpoint: (name) => `/dr/volumes/${name}/_data`,
    mountsOf: (c) => (c === 'other' ? [{ Type: 'bind', Source: '/var/run/docker.sock', Destination: '/s', Mode: '', RW: true }] : null),
  });
  t.equal(inspect.Name, 'web');
  t.equal(inspect.Image, 'sha256:img');
  t.equal(inspect.Config.User, 'app', "the image's USER when the request sets none");
  t.same({ ...inspect.Config.Labels }, { a: '1', b: 'image' }, "the request's labels over the image's");
  t.same(inspect.NetworkSettings.Ports, { '80/tcp': [{ HostIp: '', HostPort: '8080' }] });
  t.same(
    inspect.Mounts!.map((m) => [m.Type, m.Source, m.Destination, m.RW]),
    [
      ['bind', '/etc', '/e', false],
      ['volume', '/var/lib/docker/volumes/data/_data', '/d', true],
      ['bind', '/srv/x', '/x', true],
      ['volume', '/dr/volumes/v/_data', '/v', true],
      ['bind', '/var/run/docker.sock', '/s', false],
    ],
  );
  t.same((inspect.Mounts![3] as { Options?: unknown }).Options, { type: 'none', o: 'bind', device: '/' }, "a new volume carries the request's driver options");
});
