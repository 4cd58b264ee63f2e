/**
 * The iptables backend against the real tools, iptables-nft and iptables-legacy, always inside fresh
 * network namespaces (`dwipt-<random>`): the host's own tables are never touched. Needs root.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { isIptablesError, readFilter, restore, type IptablesOptions } from '../../src/adapters/iptables/apply.js';
import { iptablesBackend } from '../../src/adapters/iptables/backend.js';
import { renderInputRules, renderRestore, renderRules } from '../../src/adapters/iptables/render.js';
import { UnsafeValueError } from '../../src/adapters/firewall/safe-values.js';
import type { Decision } from '../../src/domain/decision.js';
import { planAll, planContainer, type ContainerElements, type FirewallPlan } from '../../src/domain/firewall/plan.js';
import { parseCidr } from '../../src/domain/net/cidr.js';
import { makeFacts } from '../helpers/facts.js';
import { assertClientNetFree } from '../helpers/netns.js';
import { CLIENT_JS, SERVER_JS, connects, netns as labNetns, packetTopology, startIn } from '../helpers/packet-lab.js';

const VARIANTS = ['nft', 'legacy'] as const;
type Variant = (typeof VARIANTS)[number];

/** A fresh, empty network namespace, deleted in teardown. */
const netns = (t: Test, suffix = ''): string => labNetns(t, 'dwipt', suffix);

const inNetns = (name: string, ...argv: string[]): string =>
  execFileSync('ip', ['netns', 'exec', name, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** `iptables-<variant> -w ARGS` (or ip6tables) in the namespace. */
const ipt = (name: string, variant: Variant, family: 4 | 6, ...args: string[]): string =>
  inNetns(name, `${family === 4 ? 'iptables' : 'ip6tables'}-${variant}`, '-w', ...args);

/** The whole filter table, both families, as `-S` prints it. */
const tables = (name: string, variant: Variant): string =>
  `${ipt(name, variant, 4, '-S')}--- IPv6\n${ipt(name, variant, 6, '-S')}`;

/** One container with one published tcp port per entry: [host ip, host port, container address, container port, allowed sources]. */
function container(id: string, ports: Array<[string, number, string, number, 'any' | string[]]>): ContainerElements {
  const decision: Pick<Decision, 'containerId' | 'ports'> = {
    containerId: id,
    ports: ports.map(([hostIp, hostPort, , containerPort, allow]) => ({
      port: { proto: 'tcp', hostIp, hostPort, containerPort },
      rule: 'test',
      allow: allow === 'any' ? 'any' : allow.map((text) => parseCidr(text)!),
      narrowedByLabel: false,
      labelError: null,
    })),
  };
  const networks = [...new Set(ports.map(([, , addr]) => addr))].map((addr) => ({
    name: 'n', networkId: 'n', ipv4: addr.includes(':') ? '' : addr, ipv6: addr.includes(':') ? addr : '', mac: '',
  }));
  return planContainer(makeFacts({ id, networks }), decision);
}

const WEB = container('web', [['0.0.0.0', 443, '172.17.0.2', 8443, 'any'], ['::', 443, '2001:db8:17::2', 8443, ['2001:db8::/32']]]);
const DNS = container('dns', [['192.0.2.2', 53, '172.18.0.3', 53, ['198.51.100.0/24', '10.0.0.0/8']]]);
const BRIDGES = ['docker0', 'br-0123456789ab'];
const BASE = planAll([WEB, DNS], { defaultDeny: true, bridges: BRIDGES });
const OTHER = planAll([DNS], { defaultDeny: false, bridges: [] });

const chainOf = async (options: IptablesOptions, family: 4 | 6) => (await readFilter(family, options)).chain;

for (const variant of VARIANTS) {
  t.test(`iptables-${variant}`, async (t) => {
    t.test('replace installs the chain and exactly one jump, first in DOCKER-USER', async (t) => {
      const name = netns(t);
      const options = { variant, netns: name };
      const backend = iptablesBackend(options);
      t.equal(await backend.installed(), false);
      t.equal(await backend.drift(BASE), 'chain DOCKWARDEN (IPv4) is missing; DOCKER-USER (IPv4) is missing; ' +
        'chain DOCKWARDEN-INPUT (IPv4) is missing; the jump to DOCKWARDEN-INPUT is not the one first rule of INPUT (IPv4); ' +
        'chain DOCKWARDEN (IPv6) is missing; DOCKER-USER (IPv6) is missing; ' +
        'chain DOCKWARDEN-INPUT (IPv6) is missing; the jump to DOCKWARDEN-INPUT is not the one first rule of INPUT (IPv6)');

      await backend.replace(BASE);
      for (const family of [4, 6] as const) {
        t.same(await chainOf(options, family), renderRules(BASE, family), `IPv${family}: -S prints exactly the rendered rules`);
        t.equal(ipt(name, variant, family, '-S', 'DOCKER-USER'), '-N DOCKER-USER\n-A DOCKER-USER -j DOCKWARDEN\n',
          `IPv${family}: DOCKER-USER created, one jump`);
        t.same((await readFilter(family, options)).inputChain, renderInputRules(BASE, family), `IPv${family}: DOCKWARDEN-INPUT as rendered`);
        t.equal(ipt(name, variant, family, '-S', 'INPUT'), '-P INPUT ACCEPT\n-A INPUT -j DOCKWARDEN-INPUT\n', `IPv${family}: one jump from INPUT`);
      }
      t.equal(await backend.installed(), true);
      t.equal(await backend.drift(BASE), null, 'no drift right after a replace');

      const before = tables(name, variant);
      await backend.replace(BASE);
      t.equal(tables(name, variant), before, 'a second replace: still one jump, same rules');
      t.equal(await iptablesBackend(options).drift(BASE), null, 'a fresh backend (a restarted daemon) sees no drift either');
    });

    t.test("Docker's DOCKER-USER and its rules are kept; the jump goes first", async (t) => {
      const name = netns(t);
      const options = { variant, netns: name };
      for (const family of [4, 6] as const) {
        ipt(name, variant, family, '-N', 'DOCKER-USER');
        ipt(name, variant, family, '-A', 'FORWARD', '-j', 'DOCKER-USER');
        ipt(name, variant, family, '-A', 'DOCKER-USER', '-i', 'eth9', '-j', 'DROP');
        ipt(name, variant, family, '-A', 'DOCKER-USER', '-j', 'RETURN');
      }
      const backend = iptablesBackend(options);
      await backend.replace(BASE);
      const rules = '-N DOCKER-USER\n-A DOCKER-USER -j DOCKWARDEN\n-A DOCKER-USER -i eth9 -j DROP\n-A DOCKER-USER -j RETURN\n';
      t.equal(ipt(name, variant, 4, '-S', 'DOCKER-USER'), rules);
      t.equal(ipt(name, variant, 6, '-S', 'DOCKER-USER'), rules);

      ipt(name, variant, 4, '-A', 'DOCKER-USER', '-j', 'DOCKWARDEN');
      ipt(name, variant, 6, '-D', 'DOCKER-USER', '1');
      ipt(name, variant, 6, '-A', 'DOCKER-USER', '-j', 'DOCKWARDEN');
      t.equal(await backend.drift(BASE), 'DOCKER-USER (IPv4) jumps to DOCKWARDEN 2 times; ' +
        'the jump to DOCKWARDEN is not the first rule of DOCKER-USER (IPv6)');
      await backend.replace(BASE);
      t.equal(ipt(name, variant, 4, '-S', 'DOCKER-USER'), rules, 'IPv4: the duplicate is gone');
      t.equal(ipt(name, variant, 6, '-S', 'DOCKER-USER'), rules, 'IPv6: the jump is first again');
      t.equal(await backend.drift(BASE), null);
    });

    t.test('update re-renders the chain from the plan', async (t) => {
      const name = netns(t);
      const options = { variant, netns: name };
      const backend = iptablesBackend(options);
      await backend.replace(BASE);
      await backend.update({ add: OTHER, delete: BASE }, () => OTHER);
      t.same(await chainOf(options, 4), renderRules(OTHER, 4));
      t.same(await chainOf(options, 6), renderRules(OTHER, 6), 'IPv6: nothing left to judge, no baseline: only direct routing is dropped');
      t.ok(renderRules(OTHER, 6).every((rule) => rule.includes('-m conntrack --ctstate NEW')), 'and that only for new connections');
      t.equal(await backend.drift(OTHER), null);
      t.equal(await backend.drift(BASE), 'rules in DOCKWARDEN or DOCKWARDEN-INPUT (IPv4) differ from what dockwarden applied; ' +
        'rules in DOCKWARDEN or DOCKWARDEN-INPUT (IPv6) differ from what dockwarden applied', 'drift against a plan that is not installed');
    });

    t.test('a failed restore leaves the previous chain intact', async (t) => {
      const name = netns(t);
      const options = { variant, netns: name };
      await iptablesBackend(options).replace(BASE);
      const before = tables(name, variant);

      // The new chain in full, then a line the tool refuses: the commit never happens.
      const refused = async (payload: string, bad: string, message: RegExp) => {
        const error = await restore(payload, 4, options).then(() => null, (err: unknown) => err);
        t.ok(isIptablesError(error), `${bad}: an IptablesError`);
        if (!isIptablesError(error)) return;
        const line = payload.split('\n').lastIndexOf(bad) + 1;
        t.equal(error.line, line, `${bad}: it names the failing line`);
        t.equal(error.inputLine, bad);
        t.match(error.message, message);
        t.ok(error.message.startsWith(`iptables-${variant}-restore: `) && error.message.endsWith(` (line ${line}: ${bad})`), error.message);
        t.not(error.exitCode, 0);
        t.equal(tables(name, variant), before, `${bad}: none of the new rules were committed`);
      };
      const withLine = (bad: string) => renderRestore(OTHER, 4).replace('COMMIT\n', `${bad}\nCOMMIT\n`);
      await refused(withLine('-A DOCKWARDEN -p tcp --bogus'), '-A DOCKWARDEN -p tcp --bogus', /unknown option "--bogus"/);
      // What a restore meets when DOCKER-USER changed after it was read: the kernel refuses at commit.
      const stale = renderRestore(OTHER, 4, { exists: true, jumps: 2, jumpFirst: true });
      await refused(stale, '-D DOCKER-USER -j DOCKWARDEN', /line \d+ failed/);

      t.throws(() => renderRestore({ ...BASE, bridges: ['docker0\n-F DOCKER-USER'] }, 4), UnsafeValueError,
        'an interface name outside the alphabet is refused before anything runs');
      await t.rejects(iptablesBackend({ variant, netns: '../../proc/1/ns/net' }).replace(BASE), /invalid network namespace name/);
      await t.rejects(iptablesBackend({ variant: 'sh' as never, netns: name }).replace(BASE), /invalid iptables variant "sh"/);
      t.equal(tables(name, variant), before, 'nothing changed');
    });

    t.test('drift: a deleted jump, a flushed chain, an edited rule; replace repairs', async (t) => {
      const name = netns(t);
      const options = { variant, netns: name };
      const backend = iptablesBackend(options);
      await backend.replace(BASE);

      ipt(name, variant, 4, '-D', 'DOCKER-USER', '-j', 'DOCKWARDEN');
      t.equal(await backend.drift(BASE), 'the jump from DOCKER-USER to DOCKWARDEN (IPv4) is missing');
      await backend.replace(BASE);

      ipt(name, variant, 6, '-F', 'DOCKWARDEN');
      t.equal(await backend.drift(BASE), 'rules in DOCKWARDEN or DOCKWARDEN-INPUT (IPv6) differ from what dockwarden applied', 'flushed');
      await backend.replace(BASE);

      ipt(name, variant, 4, '-R', 'DOCKWARDEN', '2', '-j', 'RETURN');
      t.equal(await backend.drift(BASE), 'rules in DOCKWARDEN or DOCKWARDEN-INPUT (IPv4) differ from what dockwarden applied', 'edited');
      await backend.replace(BASE);

      ipt(name, variant, 4, '-D', 'DOCKER-USER', '-j', 'DOCKWARDEN');
      ipt(name, variant, 4, '-F', 'DOCKWARDEN');
      ipt(name, variant, 4, '-X', 'DOCKWARDEN');
      t.equal(await backend.drift(BASE), 'chain DOCKWARDEN (IPv4) is missing; the jump from DOCKER-USER to DOCKWARDEN (IPv4) is missing');
      await backend.replace(BASE);
      t.equal(await backend.drift(BASE), null, 'repaired');
    });

    t.test('remove leaves nothing of ours; show', async (t) => {
      const name = netns(t);
      const options = { variant, netns: name };
      const backend = iptablesBackend(options);
      await backend.replace(OTHER);
      const shown = (tool: string, chain: string, rules: string[]) => [`# ${tool} -S ${chain}`, `-N ${chain}`, ...rules].map((l) => `${l}\n`).join('');
      t.equal(await backend.show(), shown('IPv4: iptables', 'DOCKWARDEN', renderRules(OTHER, 4)) + shown('IPv4: iptables', 'DOCKWARDEN-INPUT', renderInputRules(OTHER, 4)) +
        shown('IPv6: ip6tables', 'DOCKWARDEN', renderRules(OTHER, 6)) + shown('IPv6: ip6tables', 'DOCKWARDEN-INPUT', renderInputRules(OTHER, 6)));
      ipt(name, variant, 4, '-A', 'DOCKER-USER', '-j', 'DOCKWARDEN');

      await backend.remove();
      const policies = '-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N DOCKER-USER\n';
      t.equal(tables(name, variant), `${policies}--- IPv6\n${policies}`, 'no chain, no jump; DOCKER-USER (Docker\'s) stays');
      t.equal(await backend.installed(), false);
      t.equal(await backend.show(), '# IPv4: iptables -S DOCKWARDEN\n# chain DOCKWARDEN is not installed\n' +
        '# IPv4: iptables -S DOCKWARDEN-INPUT\n# chain DOCKWARDEN-INPUT is not installed\n' +
        '# IPv6: ip6tables -S DOCKWARDEN\n# chain DOCKWARDEN is not installed\n' +
        '# IPv6: ip6tables -S DOCKWARDEN-INPUT\n# chain DOCKWARDEN-INPUT is not installed\n');
      await backend.remove();
      t.pass('a second remove does nothing');
    });

    t.test('timing, measured in a namespace', async (t) => {
      const name = netns(t);
      const backend = iptablesBackend({ variant, netns: name });
      const median = (values: number[]): number => values.toSorted((a, b) => a - b)[values.length >> 1]!;
      for (const count of [100, 1000]) {
        const plan = planAll(Array.from({ length: count }, (_, i) =>
          container(`c${i}`, [['0.0.0.0', 10000 + i, `172.16.${i >> 8}.${i & 255}`, 80, ['198.51.100.0/24']]])),
        { defaultDeny: true, bridges: BRIDGES });
        const rules = renderRules(plan, 4).length + renderRules(plan, 6).length;
        const runs = [];
        for (let i = 0; i < 5; i++) {
          const start = performance.now();
          await backend.replace(plan);
          runs.push(performance.now() - start);
        }
        t.comment(`iptables-${variant}: replace with ${plan.allows.length} allow rules (${rules} rules, both families, ` +
          `including reads and \`ip netns exec\`): median ${median(runs).toFixed(1)} ms`);
        t.ok(median(runs) < 10_000, `${rules} rules in under 10 s`);
        t.equal(await backend.drift(plan), null);
      }
    });
  });
}

// --- Real packets: client → server (our chain, a Docker-like DNAT and DOCKER-USER) → containers, all in namespaces.

for (const variant of VARIANTS) {
  t.test(`real packets, iptables-${variant}: allowed sources connect, others do not, revocation cuts live connections`, async (t) => {
    assertClientNetFree(); // refuses when 198.51.100.0/24 is routed on the host (these namespaces never route it there)
    const { server, client, ctrA, ctrB } = packetTopology(t, 'dwipt');
    // What Docker does for `-p 8080:80` and `-p 8081:80`, and its DOCKER-USER hook in FORWARD.
    for (const [port, to] of [['8080', '198.51.100.130:80'], ['8081', '198.51.100.194:80']] as const) {
      ipt(server, variant, 4, '-t', 'nat', '-A', 'PREROUTING', '-m', 'addrtype', '--dst-type', 'LOCAL', '-p', 'tcp', '--dport', port,
        '-j', 'DNAT', '--to-destination', to);
    }
    ipt(server, variant, 4, '-N', 'DOCKER-USER');
    ipt(server, variant, 4, '-A', 'FORWARD', '-j', 'DOCKER-USER');
    await startIn(t, ctrA, ['-e', SERVER_JS, '198.51.100.130', '80']);
    await startIn(t, ctrB, ['-e', SERVER_JS, '198.51.100.194', '80']);

    const reach = async () => {
      const results = await Promise.all(Object.entries({ a: 8080, b: 8081 }).flatMap(([key, port]) =>
        ['10', '11'].map(async (host) => [`${key}${host}`, await connects(client, `198.51.100.${host}`, port)] as const)));
      return Object.fromEntries(results);
    };
    t.same(await reach(), { a10: true, a11: true, b10: true, b11: true }, 'without dockwarden everyone gets in');

    const backend = iptablesBackend({ variant, netns: server });
    await backend.replace(planAll([], { defaultDeny: true, bridges: ['docker0'] }));
    t.same(await reach(), { a10: false, a11: false, b10: false, b11: false },
      'the baseline closes DNATed ports not yet judged (br-+ and the listed bridge)');

    const a = container('a', [['0.0.0.0', 8080, '198.51.100.130', 80, ['198.51.100.10']]]);
    const b = container('b', [['198.51.100.1', 8081, '198.51.100.194', 80, ['198.51.100.11']]]);
    const judged = planAll([a, b], { defaultDeny: true, bridges: ['docker0'] });
    await backend.update({ add: judged, delete: { ports: [], allows: [], endpoints: [], bridges: [] } }, () => judged);
    t.same(await reach(), { a10: true, a11: false, b10: false, b11: true },
      'each port admits exactly its allowed source, judged by host address and port');

    const holder = await startIn(t, client, ['-e', CLIENT_JS, '198.51.100.1', '8080', '198.51.100.10', 'hold']);
    const narrowed = planAll([container('a', [['0.0.0.0', 8080, '198.51.100.130', 80, []]]), b], { defaultDeny: true, bridges: ['docker0'] });
    await backend.update({ add: narrowed, delete: judged }, () => narrowed);
    holder.stdin!.write('go\n');
    const code = await new Promise<number | null>((resolve) => holder.on('exit', resolve));
    t.equal(code, 4, 'an established connection gets no answer once its allowance is revoked');
    t.equal(await connects(client, '198.51.100.10', 8080), false, 'and cannot reconnect');

    const unjudged: FirewallPlan = planAll([b], { defaultDeny: false, bridges: ['docker0'] });
    await backend.replace(unjudged);
    t.same((await reach()).a11, true, 'ports.default allow: an unjudged DNATed port stays open');
    await backend.remove();
  });
}
