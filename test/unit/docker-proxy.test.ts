import t from 'tap';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerProxyListeners, parseArguments } from '../../src/adapters/proc/docker-proxy.js';

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

t.test('only docker-proxy processes of this network namespace count', async (t) => {
  const proc = mkdtempSync(join(tmpdir(), 'dw-proc-'));
  const process = (pid: string, comm: string, net: string, cmdline: string[]) => {
    mkdirSync(join(proc, pid, 'ns'), { recursive: true });
    writeFileSync(join(proc, pid, 'comm'), `${comm}\n`);
    writeFileSync(join(proc, pid, 'cmdline'), cmdline.join('\0'));
    symlinkSync(net, join(proc, pid, 'ns', 'net'));
  };
  mkdirSync(join(proc, 'self', 'ns'), { recursive: true });
  symlinkSync('net:[1]', join(proc, 'self', 'ns', 'net'));
  process('10', 'docker-proxy', 'net:[1]', argv('-proto', 'tcp', '-host-ip', '0.0.0.0', '-host-port', '8080'));
  process('11', 'docker-proxy', 'net:[2]', argv('-proto', 'tcp', '-host-ip', '0.0.0.0', '-host-port', '8081'));
  process('12', 'sshd', 'net:[1]', argv('-proto', 'tcp', '-host-ip', '0.0.0.0', '-host-port', '22'));
  mkdirSync(join(proc, '13')); // ended while read: no comm
  t.same(await dockerProxyListeners(proc), [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080 }]);
});
