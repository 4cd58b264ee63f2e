/**
 * Deleting the daemon's nftables objects is repaired at once, not at the next drift check: the daemon
 * hears of it from the kernel's nf_tables notifications (native/nft_events.c). The drift check runs
 * every 300 s here (and the periodic reconcile every hour), so a repair within the bounded wait below
 * can only come from the notification.
 *
 * In the host's namespace the faults touch only our own tables (other sessions' dockerd and the
 * machine's network depend on the rest); `nft flush ruleset` runs only in a scratch namespace, with
 * a daemon of its own there (nsenter --net: `ip netns exec` would hide the cgroup tree).
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { hostVeth, peer } from '../helpers/bridge-lab.js';
import { spawnDaemon, type DaemonProcess } from '../helpers/daemon.js';
import { DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';
import { dockwarden } from '../helpers/firewall-lab.js';
import { until } from '../helpers/until.js';

const SUITE = 'dw-test.suite=table-watch';
const GOOD = '198.51.100.10';
const PORT = 18110;
/** Far below the 300 s drift interval; what a repair takes here is milliseconds. */
const REPAIR_WAIT_MS = 10_000;

const policy = `version: 1
ports:
  default: deny
  rules:
    - { name: web, match: { port: ${PORT}/tcp }, allow: [${GOOD}] }
`;

/** `nft list …` (in `netns` when given); null when it does not exist. */
function list(netns: string | null, ...args: string[]): string | null {
  try {
    return execFileSync(...command(netns, 'nft', 'list', ...args), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

const command = (netns: string | null, ...argv: string[]): [string, string[]] => (netns === null ? [argv[0]!, argv.slice(1)] : ['ip', ['netns', 'exec', netns, ...argv]]);
const nft = (netns: string | null, ...args: string[]): void => void execFileSync(...command(netns, 'nft', ...args), { stdio: 'ignore' });

/**
 * Both tables hold what the daemon put in: a rule of each chain the faults below empty, the allowed
 * source of the published port, and (host only) the container's bridge port.
 */
const restored = (netns: string | null, veth: string | null) => async (): Promise<true | undefined> => {
  const firewall = list(netns, 'table', 'inet', 'dockwarden');
  const bridge = list(netns, 'table', 'bridge', 'dockwarden_bridge');
  if (!firewall?.includes(GOOD) || !firewall.includes('goto bridged') || !bridge?.includes('jump spoofed_mac')) return undefined;
  return veth === null || bridge.includes(`"${veth}"`) ? true : undefined;
};

/** Starts the test with no container of this suite and no table of ours. */
async function cleanSlate(): Promise<void> {
  await removeTestContainers(SUITE);
  dockwarden('nftables', 'firewall', 'remove');
}

function daemon(t: Test, wrapper?: string[], backend: 'nftables' | 'iptables' = 'nftables'): DaemonProcess {
  const d = spawnDaemon({
    policy,
    dockerSocket: DOCKER_SOCKET,
    extraConfig: `firewall:\n  backend: ${backend}\n  driftCheckSeconds: 300\nreconcile:\n  intervalSeconds: 3600`,
    ...(wrapper ? { wrapper } : {}),
  });
  t.teardown(() => d.stop('SIGKILL'));
  return d;
}

t.teardown(cleanSlate);

/** A network namespace of the test's own, where `nft flush ruleset` touches nothing else. */
function scratchNamespace(t: Test): string {
  const ns = `dw-tw-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.teardown(() => execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }));
  return ns;
}

t.test('host namespace: each deletion of our objects is repaired long before the drift check', async (t) => {
  await cleanSlate();
  const id = await runContainer({ publish: [`${PORT}:80/tcp`], labels: { 'dw-test.suite': 'table-watch' } });
  const veth = hostVeth((await peer(id, 'bridge')).pid);
  const d = daemon(t);
  await d.waitForLog((l) => l.msg === 'reconciled');
  await until(restored(null, veth), REPAIR_WAIT_MS, 'both tables installed with their elements');

  const faults: Array<[string, () => void]> = [
    ['delete table inet dockwarden', () => nft(null, 'delete', 'table', 'inet', 'dockwarden')],
    ['delete table bridge dockwarden_bridge', () => nft(null, 'delete', 'table', 'bridge', 'dockwarden_bridge')],
    ['flush chain inet dockwarden forward', () => nft(null, 'flush', 'chain', 'inet', 'dockwarden', 'forward')],
    ['flush chain bridge dockwarden_bridge check', () => nft(null, 'flush', 'chain', 'bridge', 'dockwarden_bridge', 'check')],
    ['insert an accept rule into inet dockwarden forward', () => nft(null, 'insert', 'rule', 'inet', 'dockwarden', 'forward', 'accept')],
  ];
  for (const [fault, run] of faults) {
    const before = d.logs.length;
    run();
    await until(async () => {
      const back = await restored(null, veth)();
      // A rule of someone else's in our chain is only gone once the table was replaced.
      return back && !/^\s*accept$/m.test(list(null, 'chain', 'inet', 'dockwarden', 'forward') ?? '') ? back : undefined;
    }, REPAIR_WAIT_MS, `repair after: ${fault}`);
    t.pass(`repaired after: ${fault}`);
    const said = await d.waitForLog((l) => d.logs.indexOf(l) >= before && /^(firewall|bridge isolation) drift repaired$/.test(l.msg ?? ''), 5_000);
    t.ok(said, `and said so (${fault})`);
  }
  t.equal(await d.stop(), 0);
});

t.test('scratch namespace: nft flush ruleset is repaired long before the drift check', async (t) => {
  const ns = scratchNamespace(t);
  await cleanSlate();
  await runContainer({ publish: [`${PORT}:80/tcp`], labels: { 'dw-test.suite': 'table-watch' } });
  const d = daemon(t, ['nsenter', `--net=/run/netns/${ns}`, '--']);
  await d.waitForLog((l) => l.msg === 'reconciled');
  await until(restored(ns, null), REPAIR_WAIT_MS, 'both tables installed in the scratch namespace');

  for (let i = 1; i <= 3; i++) {
    nft(ns, 'flush', 'ruleset');
    await until(restored(ns, null), REPAIR_WAIT_MS, `repair after flush ruleset #${i}`);
    t.pass(`both tables back after flush ruleset #${i}`);
  }
  t.equal(await d.stop(), 0);
});

t.test('scratch namespace, iptables-nft backend: nft flush ruleset is repaired long before the drift check', async (t) => {
  // Its chains live in `ip filter` and `ip6 filter`, which Docker writes to at every start and stop:
  // only a table or chain deleted there calls for a check, and a flush deletes them all.
  const ns = scratchNamespace(t);
  await cleanSlate();
  await runContainer({ publish: [`${PORT}:80/tcp`], labels: { 'dw-test.suite': 'table-watch' } });
  const d = daemon(t, ['nsenter', `--net=/run/netns/${ns}`, '--'], 'iptables');
  await d.waitForLog((l) => l.msg === 'reconciled');
  const chain = (): string | null => {
    try {
      return execFileSync(...command(ns, 'iptables-nft', '-S', 'DOCKWARDEN'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return null;
    }
  };
  const installed = async () => (chain()?.includes(`${GOOD}/32`) ? true : undefined);
  await until(installed, REPAIR_WAIT_MS, 'the DOCKWARDEN chain installed in the scratch namespace');
  for (let i = 1; i <= 3; i++) {
    const before = d.logs.length;
    nft(ns, 'flush', 'ruleset');
    await until(installed, REPAIR_WAIT_MS, `repair after flush ruleset #${i}`);
    t.pass(`the chain is back after flush ruleset #${i}`);
    t.ok(await d.waitForLog((l) => d.logs.indexOf(l) >= before && l.msg === 'firewall drift repaired', 5_000), 'and said so');
  }
  t.equal(await d.stop(), 0);
});
