/**
 * What a lookup on a container-named path costs through the probe (a `realpath` child process with a
 * deadline, src/adapters/fs/path-probe.ts) against the floor of Node's own `fs.promises.realpath`
 * (libuv's thread pool, no deadline), in the same run: one lookup at a time, and a container's worth
 * (8) at once. The probe is what keeps a hung mount from taking the daemon's four fs threads.
 */
import { mkdirSync, symlinkSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { pathProbe } from '../../src/adapters/fs/path-probe.js';
import { fmtStats, main, now, printJson, ratio, say, scratchDir, stats } from './lib.js';

const PATHS = 200;
const ROUNDS = 5;

await main('path-probe', 120, { hostTable: false, docker: false, daemon: false }, async () => {
  const dir = scratchDir();
  const paths: string[] = [];
  for (let i = 0; i < PATHS; i++) {
    mkdirSync(join(dir, `d${i}`, 'data'), { recursive: true });
    symlinkSync(join(dir, `d${i}`), join(dir, `l${i}`));
    paths.push(join(dir, `l${i}`, 'data'));
  }
  const probe = pathProbe();
  const viaProbe = async (p: string) => {
    const r = await probe.realpath(p);
    if (!r.ok) throw new Error(`probe failed on ${p}: ${r.reason}`);
  };
  const viaFs = async (p: string) => void (await realpath(p));
  const one = async (lookup: (p: string) => Promise<void>) => {
    const samples: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const p of paths) {
        const t0 = now();
        await lookup(p);
        samples.push(now() - t0);
      }
    }
    return stats(samples);
  };
  const batch = async (lookup: (p: string) => Promise<void>) => {
    const samples: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < paths.length; i += 8) {
        const t0 = now();
        await Promise.all(paths.slice(i, i + 8).map(lookup));
        samples.push(now() - t0);
      }
    }
    return stats(samples);
  };
  const floorOne = await one(viaFs);
  const probeOne = await one(viaProbe);
  const floorBatch = await batch(viaFs);
  const probeBatch = await batch(viaProbe);
  say(`one lookup     fs.realpath (floor): ${fmtStats(floorOne)}`);
  say(`one lookup     probe:               ${fmtStats(probeOne)}`);
  say(`8 at once      fs.realpath (floor): ${fmtStats(floorBatch)}`);
  say(`8 at once      probe:               ${fmtStats(probeBatch)}`);
  printJson('path-probe', {
    oneP50Ms: probeOne.p50,
    oneP99Ms: probeOne.p99,
    floorOneP50Ms: floorOne.p50,
    batch8P50Ms: probeBatch.p50,
    batch8P99Ms: probeBatch.p99,
    floorBatch8P50Ms: floorBatch.p50,
    ratioOneP50: ratio(probeOne.p50, floorOne.p50),
  });
});
