import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { CLIENT_NET, HOST_ADDR, createClient } from '../helpers/netns.js';

const routesTo = (prefix: string): unknown[] =>
  JSON.parse(execFileSync('ip', ['-j', '-4', 'route', 'show', 'table', 'all', 'to', 'match', prefix], { encoding: 'utf8' }) || '[]')
    .filter((r: { dst?: string }) => r.dst !== 'default');
const netnsList = (): string => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
const linkExists = (dev: string): boolean => {
  try {
    execFileSync('ip', ['link', 'show', dev], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

// A client that connects from inside the namespace and prints what the server said.
const CLIENT_JS = `
const [host, port, localAddress] = process.argv.slice(1);
const s = require('net').connect({ host, port: Number(port), localAddress });
let got = '';
s.on('data', (d) => (got += d));
s.on('end', () => { process.stdout.write(got); process.exit(0); });
s.on('error', (e) => { console.error(e.message); process.exit(2); });
setTimeout(() => { console.error('timeout'); process.exit(3); }, 5000);
`;

t.test('a namespace client reaches a plain TCP listener on the host veth address', async (t) => {
  t.same(routesTo(CLIENT_NET), [], `${CLIENT_NET} is not routed before`);
  const client = createClient({ addrs: ['198.51.100.10', '198.51.100.11'], t });
  t.match(netnsList(), client.name, 'namespace exists');
  t.ok(client.hostVeth.length <= 15 && client.clientVeth.length <= 15, 'veth names fit IFNAMSIZ');

  const server = createServer((sock) => sock.end(`hello ${sock.remoteAddress}\n`));
  await new Promise<void>((resolve) => server.listen(0, HOST_ADDR, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;

  for (const src of client.addrs) {
    const r = await client.exec(process.execPath, ['-e', CLIENT_JS, HOST_ADDR, String(port), src], { timeoutMs: 10_000 });
    t.equal(r.code, 0, `client exit code (stderr: ${r.stderr.trim()})`);
    t.equal(r.stdout, `hello ${src}\n`, `the server saw source ${src}`);
  }

  const ipAddr = await client.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', client.clientVeth]);
  t.match(ipAddr.stdout, /198\.51\.100\.10\/24/, 'exec runs inside the namespace');
  const fail = await client.exec('sh', ['-c', 'exit 7']);
  t.equal(fail.code, 7, 'a non-zero exit is reported, not thrown');

  t.throws(() => createClient(), /refusing to create a test client: 198\.51\.100\.0\/24 is already routed/,
    'a second client is refused while the range is routed');
  t.throws(() => createClient({ addrs: ['192.0.2.10'] }), /outside 198\.51\.100\.0\/24/, 'addresses outside the range are refused');

  await client.destroy();
  t.same(routesTo(CLIENT_NET), [], 'destroy removes the route');
  t.notMatch(netnsList(), client.name, 'destroy removes the namespace');
  t.notOk(linkExists(client.hostVeth), 'destroy removes the host veth');
  await client.destroy();
  t.pass('destroy is idempotent');
});
