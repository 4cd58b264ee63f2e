import t from 'tap';
import { judged, spawnDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { DOCKER_SOCKET, docker, removeTestContainers, runContainer } from '../helpers/docker.js';
import { dockwarden } from '../helpers/cli.js';

/**
 * A container author controls what goes into an alert's details (exec argv, mount lists, label
 * values): a privileged exec with a megabyte of arguments must not make a megabyte alert record,
 * written to every sink's queue, logged and sent (issue #13, "Robustness against hostile input").
 */

const SUITE = 'dw-test.suite=evasion-alerts';
const POLICY = `version: 1
containers:
  privileged-exec: { action: alert }
`;

let daemon: DaemonProcess;

t.before(async () => {
  await removeTestContainers(SUITE);
  daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: 'firewall:\n  backend: nftables' });
  await daemon.waitForLog((l) => l.msg === 'reconciled');
});
t.teardown(async () => {
  await daemon.stop('SIGKILL');
  await dockwarden(['firewall', 'remove'], { DOCKWARDEN_FIREWALL_BACKEND: 'nftables' });
  await removeTestContainers(SUITE);
});

t.test('a privileged exec with a megabyte of arguments makes a bounded alert', async (t) => {
  const id = await runContainer({ cmd: ['sleep', '3600'], labels: { 'dw-test.suite': 'evasion-alerts' }, hostConfig: { Runtime: 'dw-host-caps' } });
  await daemon.waitForLog(judged(id));
  // 400 arguments of 2,500 characters: 1 MB of argv, each argument within the kernel's per-argument limit.
  const argv = ['sleep', '30', ...Array.from({ length: 400 }, (_, i) => `${i}`.padEnd(2_500, 'x'))];
  const exec = await docker.getContainer(id).exec({ Cmd: ['sh', '-c', 'sleep 30', ...argv], Privileged: true, AttachStdout: false, AttachStderr: false });
  await exec.start({ Detach: true });
  const line = await daemon.waitForLog((l) => l.msg === 'alert' && (l.alert as { check?: string }).check === 'privileged-exec');
  const record = JSON.stringify(line.alert);
  t.ok(Buffer.byteLength(record) < 20_000, `the record is ${Buffer.byteLength(record)} bytes, not a megabyte`);
  const execs = (line.alert as { details: { execs: Array<{ command: string[] }> } }).details.execs;
  const command = execs.find((e) => e.command.length > 3)!.command;
  const kept = command.length - 1;
  t.ok(kept >= 8 && kept <= 32, `the first ${kept} arguments kept`);
  t.equal(command.at(-1), `[${argv.length + 3 - kept} more]`, 'and a marker saying how many are not');
  t.ok(command.every((arg) => arg.length <= 1_100), 'each argument cut');
  t.match(command[5], /^0x+…\[\d+ more characters\]$/, 'and says how much is missing');
});
