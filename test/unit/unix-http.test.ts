import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { HttpFailure, UnixHttpClient } from '../../src/adapters/docker/unix-http.js';

/**
 * The engine client's HTTP over kept unix-socket connections, against a stand-in that writes raw
 * bytes: how an answer is split, a connection closed at the wrong moment, a malformed answer, are
 * what a real dockerd will not do on demand (the real one is every integration test's engine).
 * `answer(request text, socket, nth request on this connection)` writes whatever it likes.
 */
async function rawServer(t: Test, answer: (request: string, socket: Socket, nth: number) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'dw-unix-http-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.unref(); // the stand-in's side: only the client's connections are counted as holding the process
    let nth = 0;
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      // Requests carry no body here but a JSON one with its length: one request is a head, plus that body.
      for (let end = text.indexOf('\r\n\r\n'); end >= 0; end = text.indexOf('\r\n\r\n')) {
        const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
        if (text.length < end + 4 + length) return;
        const request = text.slice(0, end + 4 + length);
        text = text.slice(end + 4 + length);
        answer(request, socket, ++nth);
      }
    });
  });
  const socketPath = join(dir, 'engine.sock');
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return { socketPath, connections: () => connections };
}

const ok = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const chunked = (...parts: string[]): string => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${parts.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('')}0\r\n\r\n`;
const get = (target = '/x') => ({ method: 'GET' as const, target, timeoutMs: 2_000 });

t.test('calls one after the other share one kept connection', async (t) => {
  const server = await rawServer(t, (_req, socket, nth) => socket.write(ok(`{"n":${nth}}`)));
  const client = new UnixHttpClient(server.socketPath, 1 << 20);
  for (let i = 1; i <= 20; i++) t.equal((await client.request(get())).body, `{"n":${i}}`);
  t.equal(server.connections(), 1);
  client.close();
});

t.test('calls at once each have a connection; at most 8 are kept after', async (t) => {
  const server = await rawServer(t, (_req, socket) => setTimeout(() => socket.write(ok('{}')), 20));
  const client = new UnixHttpClient(server.socketPath, 1 << 20);
  await Promise.all(Array.from({ length: 12 }, () => client.request(get())));
  t.equal(server.connections(), 12);
  await Promise.all(Array.from({ length: 12 }, () => client.request(get())));
  t.equal(server.connections(), 16, 'the 8 kept were used again, 4 more opened');
  client.close();
});

t.test('a chunked answer split at every byte is read whole', async (t) => {
  const body = JSON.stringify({ Id: 'c1', Name: '/é', Labels: { a: 'x'.repeat(300) } });
  const wire = chunked(body.slice(0, 10), body.slice(10, 200), body.slice(200));
  const server = await rawServer(t, (_req, socket) => {
    const bytes = Buffer.from(wire);
    let i = 0;
    const next = (): void => void (i < bytes.length && (socket.write(bytes.subarray(i, ++i)), setImmediate(next)));
    next();
  });
  const client = new UnixHttpClient(server.socketPath, 1 << 20);
  const answer = await client.request(get());
  t.same(answer, { status: 200, contentType: 'application/json', body });
  t.same((await client.request(get())).body, body, 'and the connection is used again after it');
  t.equal(server.connections(), 1);
  client.close();
});

t.test('several answers in one write are not taken for one', async (t) => {
  // A byte past the answer was never asked for: the answer stands, the connection is not used again.
  const server = await rawServer(t, (_req, socket) => socket.write(ok('{"a":1}') + ok('{"b":2}')));
  const client = new UnixHttpClient(server.socketPath, 1 << 20);
  t.equal((await client.request(get())).body, '{"a":1}');
  t.equal((await client.request(get())).body, '{"a":1}');
  t.equal(server.connections(), 2);
  client.close();
});

t.test('a kept connection the engine closed is replaced, once', async (t) => {
  // The engine closes every connection at its second request without answering (as when it closes an idle one just then).
  const server = await rawServer(t, (_req, socket, nth) => (nth === 1 ? socket.write(ok('{}')) : socket.destroy()));
  const client = new UnixHttpClient(server.socketPath, 1 << 20);
  await client.request(get());
  await client.request({ method: 'POST', target: '/containers/c1/kill', timeoutMs: 2_000 });
  t.equal(server.connections(), 2, 'the call went again on a new connection');
  client.close();
});

t.test('a new connection closed before the answer fails the call: no retry loop', async (t) => {
  const server = await rawServer(t, (_req, socket) => socket.destroy());
  const client = new UnixHttpClient(server.socketPath, 1 << 20);
  await t.rejects(client.request(get()), HttpFailure);
  t.equal(server.connections(), 1);
});

t.test('an answer cut off mid-body fails the call', async (t) => {
  const server = await rawServer(t, (_req, socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"a"'));
  await t.rejects(new UnixHttpClient(server.socketPath, 1 << 20).request(get()), { name: 'HttpFailure', message: /closed the connection before its answer was complete/ });
});

t.test('an answer delimited by the end of the connection is read to its end', async (t) => {
  const server = await rawServer(t, (_req, socket) => socket.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nOK'));
  const client = new UnixHttpClient(server.socketPath, 1 << 20);
  t.same(await client.request(get()), { status: 200, contentType: 'text/plain', body: 'OK' });
});

t.test('an answer with `Connection: close` is not kept', async (t) => {
  const server = await rawServer(t, (_req, socket) => socket.write(ok('{}', 'Connection: close\r\n')));
  const client = new UnixHttpClient(server.socketPath, 1 << 20);
  await client.request(get());
  await client.request(get());
  t.equal(server.connections(), 2);
});

t.test('204 has no body; 404 comes back with its status', async (t) => {
  const server = await rawServer(t, (req, socket) => socket.write(req.startsWith('POST')
    ? 'HTTP/1.1 204 No Content\r\n\r\n'
    : 'HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 23\r\n\r\n{"message":"no such x"}'));
  const client = new UnixHttpClient(server.socketPath, 1 << 20);
  t.same(await client.request({ method: 'POST', target: '/containers/c1/update', json: '{"a":"é"}', timeoutMs: 2_000 }), { status: 204, contentType: '', body: '' });
  t.equal((await client.request(get())).status, 404);
  t.equal(server.connections(), 1);
});

t.test('a request body goes with its length in bytes', async (t) => {
  const seen: string[] = [];
  const server = await rawServer(t, (req, socket) => (seen.push(req), socket.write('HTTP/1.1 204 No Content\r\n\r\n')));
  await new UnixHttpClient(server.socketPath, 1 << 20).request({ method: 'POST', target: '/a?b=c', json: '{"n":"é"}', timeoutMs: 2_000 });
  t.match(seen[0], /^POST \/a\?b=c HTTP\/1\.1\r\nHost: localhost\r\nContent-Type: application\/json\r\nContent-Length: 10\r\n\r\n/);
});

t.test('malformed answers fail the call and the connection', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['HTTP/2 200 OK\r\n\r\n', /not an HTTP\/1\.x answer/],
    ['HTTP/1.1 100 Continue\r\n\r\n', /unexpected HTTP 100 answer/],
    ['HTTP/1.1 200 OK\r\nbroken\r\n\r\n', /malformed header line/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', /malformed Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /malformed Content-Length/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', /unsupported Transfer-Encoding/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /malformed chunk size/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX', /malformed chunk end/],
    [`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(70_000)}`, /head over its bound/],
    [`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${'0'.repeat(5_000)}`, /chunk-size line over its bound/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n', /answer over 1048576 bytes/],
  ];
  for (const [wire, error] of cases) {
    const server = await rawServer(t, (_req, socket) => socket.write(wire));
    await t.rejects(new UnixHttpClient(server.socketPath, 1 << 20).request(get()), { name: 'HttpFailure', message: error }, JSON.stringify(wire.slice(0, 60)));
  }
});

t.test('a chunked body over the bound is refused as it comes, not buffered', async (t) => {
  const server = await rawServer(t, (_req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = `100000\r\n${' '.repeat(0x100000)}\r\n`;
    let sent = 0;
    const more = (): void => {
      while (sent < 40 && !socket.destroyed && socket.write(chunk)) sent++;
      if (sent < 40 && !socket.destroyed) socket.once('drain', more);
    };
    more();
  });
  await t.rejects(new UnixHttpClient(server.socketPath, 4 << 20).request(get()), { message: /answer over 4194304 bytes/ });
});

t.test('no answer: the call ends at its timeout, or when its signal aborts', async (t) => {
  const server = await rawServer(t, () => {});
  const client = new UnixHttpClient(server.socketPath, 1 << 20);
  await t.rejects(client.request({ ...get(), timeoutMs: 200 }), { message: 'timed out' });
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 100);
  await t.rejects(client.request({ ...get(), timeoutMs: null, signal: abort.signal }), { message: 'timed out' });
  await t.rejects(client.request({ ...get(), timeoutMs: null, signal: AbortSignal.abort() }), { message: 'timed out' });
});

t.test('a kept connection does not hold the process open', async (t) => {
  const server = await rawServer(t, (_req, socket) => socket.write(ok('{}')));
  // A process of its own that makes a call and then has nothing to do: it must end at once, not
  // when the kept connection's idle time (10 s) is up.
  const script = `
    import { UnixHttpClient } from ${JSON.stringify(resolve(import.meta.dirname, '../../src/adapters/docker/unix-http.ts'))};
    const answer = await new UnixHttpClient(${JSON.stringify(server.socketPath)}, 1024).request({ method: 'GET', target: '/', timeoutMs: 5000 });
    process.stdout.write(answer.body);
  `;
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const child = spawn(process.execPath, [...loader, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const ended = await Promise.race([once(child, 'exit'), new Promise((resolve) => setTimeout(resolve, 8_000, 'still running'))]);
  child.kill('SIGKILL');
  t.same(ended, [0, null], 'the process ended by itself before the connection\'s idle time');
  t.equal(out, '{}');
});

t.test('no engine at the path: the call fails with the reason', async (t) => {
  await t.rejects(new UnixHttpClient('/nonexistent/dw.sock', 1 << 20).request(get()), { name: 'HttpFailure', message: /ENOENT/ });
});
