/**
 * bridge-throughput (issue #9): TCP throughput between two containers on the default bridge, with
 * bridge isolation on both their ports and without (the floor, same run). DW_BENCH_ROUNDS rounds
 * (default 9), each one 2 GiB upload without the table and one with it, alternating so drift of the
 * machine hits both alike; medians in MB/s and the ratio with/without. Target: ≤ 5 % loss
 * (ratio ≥ 0.95). The table is what the daemon installs: the real renderer, planner and veth
 * lookup (`table bridge dockwarden_bridge`), applied by the bench itself.
 */
import { execFile } from 'node:child_process';
import { connectEngine } from '../../src/adapters/docker/engine.js';
import { bridgeVeths } from '../../src/adapters/netns/bridge-veths.js';
import { nftBridgeFilter } from '../../src/adapters/nftables/bridge-backend.js';
import { planPorts } from '../../src/domain/bridge/ports.js';
import {
  api, assertRunning, BenchBroken, cleanupContainersOnExit, DOCKER_SOCKET, main, median, nftTableExists, onCleanup, printJson, ratio, Refusal, say, sleep, startContainer,
} from './lib.js';

const ROUNDS = Number(process.env.DW_BENCH_ROUNDS ?? 9);
const TARGET_RATIO = 0.95;
const SINK_PORT = 9000;

if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 20) throw new Error('DW_BENCH_ROUNDS must be 1..20');

// Sends 2 GiB in 1 MiB writes to argv host:port and prints MB/s once the sink has closed.
const SEND = `const net=require("node:net");const [host,port]=process.argv.slice(1);const total=2**31,chunk=Buffer.alloc(1<<20);let sent=0;const t0=process.hrtime.bigint();
const s=net.connect({host,port:Number(port)});
s.on("connect",function pump(){while(sent<total){sent+=chunk.length;if(!s.write(chunk))return s.once("drain",pump)}s.end()});
s.on("close",()=>console.log((total/1e6/(Number(process.hrtime.bigint()-t0)/1e9)).toFixed(1)));s.on("error",e=>{console.error(e.message);process.exit(1)});`;

await main('bridge-throughput', 170, { hostTable: false, docker: true, daemon: false }, async () => {
  if (nftTableExists('bridge', 'dockwarden_bridge')) throw new Refusal('table bridge dockwarden_bridge already exists (a daemon or a test owns it; if it is stale: node dist/cli/main.js firewall remove)');
  const filter = nftBridgeFilter();
  if (!(await filter.available())) throw new Refusal('nft does not take the bridge table here');
  onCleanup('bridge table', () => filter.remove());
  cleanupContainersOnExit();

  // Published ports only because the bench helper publishes one; nothing connects to them.
  const sink = await startContainer({ hostPort: 18450, containerPort: SINK_PORT, cmd: ['nc', '-ll', '-p', String(SINK_PORT), '-e', 'dd', 'of=/dev/null', 'bs=1M'] });
  const sender = await startContainer({ hostPort: 18451, cmd: ['sleep', '3600'] });
  const engine = connectEngine({ socketPath: DOCKER_SOCKET, timeoutMs: 10_000 });
  const policy = { antiSpoofing: true, exceptions: [] };
  const ports = [];
  for (const id of [sink, sender]) {
    const facts = await engine.readFacts(id);
    if (!facts) throw new BenchBroken(`container ${id} vanished`);
    ports.push(...planPorts(facts, policy, await bridgeVeths(facts.state.pid)));
  }
  if (ports.length !== 2) throw new BenchBroken(`expected 2 bridge ports, found ${ports.length}`);
  const sinkIp = (await api.getContainer(sink).inspect()).NetworkSettings.Networks.bridge!.IPAddress;
  const senderPid = (await api.getContainer(sender).inspect()).State.Pid;
  say(`# bridge-throughput: ${ROUNDS} rounds of 2 GiB, sender → sink ${sinkIp}:${SINK_PORT}, ports ${ports.map((p) => p.ifname).join(', ')}`);

  const upload = (): Promise<number> => new Promise((resolve, reject) => {
    assertRunning();
    execFile('nsenter', [`--net=/proc/${senderPid}/ns/net`, process.execPath, '-e', SEND, sinkIp, String(SINK_PORT)], { encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) => {
      const mbps = Number(stdout.trim());
      if (error || !Number.isFinite(mbps) || mbps <= 0) reject(new BenchBroken(`upload failed: ${stderr.trim() || error?.message || stdout}`));
      else resolve(mbps);
    });
  });

  await upload(); // warm-up: the sink's first accept, ARP, TCP slow start
  const floor: number[] = [];
  const filtered: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await filter.remove();
    await sleep(200);
    floor.push(await upload());
    await filter.replace(ports, false);
    await sleep(200);
    filtered.push(await upload());
    say(`round ${round}: without ${floor.at(-1)} MB/s, with ${filtered.at(-1)} MB/s`);
  }
  const drops = [...(await filter.drops()).values()].reduce((a, b) => a + b.total, 0);
  if (drops !== 0) throw new BenchBroken(`the filter dropped ${drops} frames of honest traffic`);
  const without = median(floor);
  const withFilter = median(filtered);
  const r = ratio(withFilter, without);
  say(`floor (no table): median ${without} MB/s; with bridge isolation: median ${withFilter} MB/s; ratio ${r} (target ≥ ${TARGET_RATIO}: ${r >= TARGET_RATIO ? 'met' : 'NOT met'})`);
  printJson('bridge-throughput', { rounds: ROUNDS, floorMBps: without, filteredMBps: withFilter, ratio: r, floorSamples: floor, filteredSamples: filtered, target: TARGET_RATIO, met: r >= TARGET_RATIO });
});
