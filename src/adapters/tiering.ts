/**
 * V8's optimising compiler (TurboFan) held back until the daemon's first reconcile has settled (issue
 * #18, the start-up reconcile at 1,000 containers). A start-up runs each of hundreds of functions a
 * thousand times, once, and TurboFan compiled them meanwhile on V8's background threads: 0.5–0.9 s of
 * CPU (its four threads' own counters) that a 2-core host took from the daemon's thread and from dockerd.
 * Held, the reconcile used a fifth to a third less CPU and was faster in 9 of 10 pairs taking turns; its
 * main thread's CPU stayed within the noise (README "Scale"). Ignition and Sparkplug run everything
 * meanwhile; afterwards code that stays hot (events, a 10,000-container table) is optimised as usual.
 */
import { setFlagsFromString } from 'node:v8';

/** Node flags by which whoever started node chose the tiers (V8 takes `_` for `-`); then they are left as chosen. */
const CHOSEN = /^--(?:no[-_])?(?:opt|max[-_]opt|turbofan|jitless)(?:=|$)/;

export interface TieringHold {
  /** TurboFan allowed again; once, later calls do nothing. */
  release(): void;
}

/**
 * Held from now until `release`: the interpreter and the baseline compiler only. `--turbofan` toggles
 * both ways at run time, and a function that ran while it was off is optimised once it is on again
 * (tested); `--max-opt=1` does not: it turns `--turbofan` off by implication, and setting it back
 * leaves it off.
 */
export function holdOptimisingCompiler(execArgv: readonly string[] = process.execArgv): TieringHold {
  if (execArgv.some((arg) => CHOSEN.test(arg))) return { release() {} };
  setFlagsFromString('--no-turbofan');
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      setFlagsFromString('--turbofan');
    },
  };
}
