import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerProxyReader, parseArguments } from '../../src/adapters/proc/docker-proxy.js';

/** The engine socket the daemon watches, in these tests. */
const ENGINE = '/run/dw-unit-test/docker.sock';

const argv = (...args: string[]) => ['/usr/sbin/docker-proxy', ...args, ''];

t.test('docker-proxy\'s flags, as Docker 20.10 passes them', async (t) => {
  t.same(parseArguments(argv('-proto', 'tcp', '-host-ip', '0.0.0.0', '-host-port', '18151', '-container-ip', '10.215.0.3', '-container-port', '80')), { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 18151 });
  t.same(parseArguments(argv('-proto', 'udp', '-host-ip', '::', '-host-port', '53', '-container-ip', 'fd00::2', '-container-port', '53')), { proto: 'udp', hostIp: '::', hostPort: 53 });
  for (const bad of [
    argv('-proto', 'icmp', '-host-ip', '0.0.0.0', '-host-port', '1'),
    argv('-proto', 'tcp', '-host-ip', '0.0.0.0', '-host-port', '0'),
    argv('-proto', 'tcp', '-host-ip', '0.0.0.0', '-host-port', '65536'),
    argv('-proto', 'tcp', '-host-ip', '0.0.0.0', '-host-port', '80x'),
    argv('-proto', 'tcp', '-host-port', '80'),
    argv('-proto', 'tcp', '-host-ip', '0.0.0.0', '-host-port'),
  ]) t.equal(parseArguments(bad), null, bad.join(' '));
});

/** A procfs of processes written by hand: comm, cmdline, ns/net, stat (its start time), dockerd's children. */
function fakeProc() {
  const proc = mkdtempSync(join(tmpdir(), 'dw-proc-'));
  const add = (pid: string, comm: string, net: string, cmdline: string[], started = '100') => {
    rmSync(join(proc, pid), { recursive: true, force: true });
    mkdirSync(join(proc, pid, 'ns'), { recursive: true });
    writeFileSync(join(proc, pid, 'comm'), `${comm}\n`);
    writeFileSync(join(proc, pid, 'cmdline'), cmdline.join('\0'));
    writeFileSync(join(proc, pid, 'stat'), `${pid} (${comm}) S 1 ${pid} ${pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 ${started} 0 0`);
    symlinkSync(net, join(proc, pid, 'ns', 'net'));
  };
  const children = (pid: string, list: string[]) => {
    mkdirSync(join(proc, pid, 'task', pid), { recursive: true });
    writeFileSync(join(proc, pid, 'task', pid, 'children'), list.map((c) => `${c} `).join(''));
  };
  /** dockerd `pid` listens on `path` (a line of this namespace's `/proc/net/unix`, an open descriptor). */
  let unix = 'Num       RefCount Protocol Flags    Type St Inode Path\n';
  const listens = (pid: string, path: string, inode: string) => {
    unix += `0000000000000000: 00000002 00000000 00010000 0001 01 ${inode} ${path}\n`;
    unix += `0000000000000000: 00000003 00000000 00000000 0001 03 ${inode}1 ${path}\n`; // an accepted client
    writeFileSync(join(proc, 'net', 'unix'), unix);
    mkdirSync(join(proc, pid, 'fd'), { recursive: true });
    symlinkSync(`socket:[${inode}]`, join(proc, pid, 'fd', '7'));
  };
  mkdirSync(join(proc, 'net'));
  add('self', 'node', 'net:[1]', []);
  return { proc, add, children, listens };
}

const proxy = (port: number) => argv('-proto', 'tcp', '-host-ip', '0.0.0.0', '-host-port', String(port), '-container-ip', '10.0.0.2', '-container-port', '80');

t.test('a full read: docker-proxy processes of this network namespace only', async (t) => {
  const { proc, add } = fakeProc();
  add('10', 'docker-proxy', 'net:[1]', proxy(8080));
  add('11', 'docker-proxy', 'net:[2]', proxy(8081));
  add('12', 'sshd', 'net:[1]', proxy(22));
  mkdirSync(join(proc, '13')); // ended while read: no comm
  t.same(await dockerProxyReader(ENGINE, proc).read(), [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080 }]);
});

t.test('once primed, the children of dockerd only; a full read again when dockerd restarted', async (t) => {
  const { add, children, proc } = fakeProc();
  add('20', 'dockerd', 'net:[1]', ['dockerd']);
  add('21', 'docker-proxy', 'net:[1]', proxy(8080));
  children('20', ['21', '22']);
  const reader = dockerProxyReader(ENGINE, proc);
  reader.prime();
  add('22', 'docker-proxy', 'net:[1]', proxy(8081)); // started by dockerd after the full read
  add('30', 'docker-proxy', 'net:[1]', proxy(9090)); // not dockerd's child: a fast read does not look
  const ports = async () => (await reader.read()).map((l) => l.hostPort).sort();
  t.same(await ports(), [8080, 8081], 'dockerd\'s children, read fast');
  add('20', 'dockerd', 'net:[1]', ['dockerd'], '200'); // a new dockerd under the same pid
  children('20', []);
  t.same(await ports(), [8080, 8081, 9090], 'a dockerd that is not the one remembered: everything read again');
});

t.test('the watched engine\'s dockerd only: another engine\'s ports in the namespace are not this daemon\'s to close', async (t) => {
  const { add, children, listens, proc } = fakeProc();
  add('40', 'dockerd', 'net:[1]', ['dockerd']);
  add('41', 'docker-proxy', 'net:[1]', proxy(8080));
  children('40', ['41']);
  add('50', 'dockerd', 'net:[1]', ['dockerd', '-H', 'unix:///run/other.sock']);
  add('51', 'docker-proxy', 'net:[1]', proxy(9090));
  children('50', ['51']);
  listens('50', '/run/other.sock', '5000');
  const ports = async (reader: ReturnType<typeof dockerProxyReader>) => (await reader.read()).map((l) => l.hostPort).sort();
  t.same(await ports(dockerProxyReader(ENGINE, proc)), [8080, 9090], 'no dockerd holds the watched socket: every docker-proxy of the namespace, the side that closes');
  listens('40', ENGINE, '4000');
  const reader = dockerProxyReader(ENGINE, proc);
  t.same(await ports(reader), [8080], 'the watched engine\'s dockerd found by its listening socket: its docker-proxy only');
  reader.prime();
  t.same(await ports(reader), [8080], 'and the fast reads after it');
  t.same(await ports(dockerProxyReader('/run/other.sock', proc)), [9090], 'the other engine, when it is the one watched');
});

t.test('the engine\'s dockerd (whose cgroup closes docker-proxy\'s ports): by its socket, else the only one of the namespace', async (t) => {
  const { add, children, listens, proc } = fakeProc();
  t.equal(await dockerProxyReader(ENGINE, proc).engine(), null, 'no dockerd');
  add('60', 'dockerd', 'net:[1]', ['dockerd']);
  add('61', 'dockerd', 'net:[2]', ['dockerd']); // another namespace's
  t.equal(await dockerProxyReader(ENGINE, proc).engine(), '60', 'none holds the watched socket (a socket proxy before it): the only dockerd here');
  add('70', 'dockerd', 'net:[1]', ['dockerd', '-H', 'unix:///run/other.sock']);
  t.equal(await dockerProxyReader(ENGINE, proc).engine(), null, 'two here and neither holds it: none');
  listens('70', ENGINE, '7000');
  children('70', []);
  t.equal(await dockerProxyReader(ENGINE, proc).engine(), '70', 'the one holding the watched socket');
});
