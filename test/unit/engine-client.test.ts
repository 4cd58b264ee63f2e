import t, { type Test } from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineClient, EngineError } from '../../src/adapters/docker/engine-client.js';

/**
 * A stand-in for dockerd on a real unix socket, for what a real dockerd will not do on demand:
 * answer with a body over the bound, or never answer. The client under test is the real one.
 */
async function fakeDockerd(t: Test, answer: (req: IncomingMessage, res: ServerResponse) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'dw-engine-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const urls: string[] = [];
  const server = createServer((req, res) => {
    urls.push(req.url ?? '');
    answer(req, res);
  });
  const socketPath = join(dir, 'docker.sock');
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return { socketPath, urls };
}

t.test('an engine error carries its HTTP status and the engine message', async (t) => {
  const { socketPath } = await fakeDockerd(t, (_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"message":"No such container: x"}');
  });
  const error = await new EngineClient(socketPath, 2_000).getContainer('x').inspect().then(() => null, (e: unknown) => e);
  t.ok(error instanceof EngineError);
  t.equal((error as EngineError).statusCode, 404);
  t.equal((error as EngineError).message, '(HTTP code 404) No such container: x');
});

t.test('an answer over the bound is refused, not buffered', async (t) => {
  const { socketPath } = await fakeDockerd(t, (_req, res) => {
    res.on('error', () => {}); // the client hangs up mid-answer
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(1 << 20, 0x20);
    let sent = 0;
    const more = (): void => {
      while (sent < 80 && res.write(chunk)) sent++;
      if (sent < 80) res.once('drain', more);
      else res.end();
    };
    more();
  });
  await t.rejects(new EngineClient(socketPath, 10_000).info(), { name: 'EngineError', statusCode: null, message: /answer over 67108864 bytes/ });
});

t.test('a call that gets no answer ends at the timeout', async (t) => {
  const { socketPath } = await fakeDockerd(t, () => {});
  const start = performance.now();
  await t.rejects(new EngineClient(socketPath, 300).listContainers(true), { statusCode: null, message: /timed out/ });
  t.ok(performance.now() - start < 5_000, 'bounded by the timeout');
});

t.test('an answer that stalls mid-body ends at the timeout too', async (t) => {
  const { socketPath } = await fakeDockerd(t, (_req, res) => {
    res.on('error', () => {}); // the client hangs up mid-answer
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"Id":'); // and nothing more
  });
  const start = performance.now();
  await t.rejects(new EngineClient(socketPath, 300).getContainer('x').inspect(), { name: 'EngineError', statusCode: null });
  t.ok(performance.now() - start < 5_000, 'bounded by the timeout');
});

t.test('a call answered in time leaves no timer behind', async (t) => {
  const { socketPath } = await fakeDockerd(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('[]');
  });
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  t.strictSame(await new EngineClient(socketPath, 60_000).listContainers(true), []);
  t.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, before, 'the deadline went with the answer');
});

t.test('names are one path segment each: a name cannot reach another endpoint', async (t) => {
  const { socketPath, urls } = await fakeDockerd(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
  const client = new EngineClient(socketPath, 2_000);
  await client.getImage('evil/../../containers/x/kill?signal=KILL').inspect();
  await client.getContainer('c1').kill('SIGTERM');
  await client.listNetworks({ driver: ['bridge'] });
  t.same(urls, [
    '/images/evil%2F..%2F..%2Fcontainers%2Fx%2Fkill%3Fsignal%3DKILL/json',
    '/containers/c1/kill?signal=SIGTERM',
    `/networks?filters=${encodeURIComponent('{"driver":["bridge"]}')}`,
  ]);
});
