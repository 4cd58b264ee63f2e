/**
 * Element updates asked for in the same turn of the event loop go to the kernel as one nft run. A
 * container's start changes both of our tables (the port firewall's elements and the bridge filter's),
 * from two enforcers side by side, and an nft process costs more than its transaction (fork, exec,
 * netlink set-up: most of an update's CPU). One run is one kernel transaction: all of it or nothing.
 * A joint run that fails is redone script by script, so each caller gets its own outcome and its own
 * error (its line numbers its own), and a refused element of one table never holds back the other.
 */
import { runNft, type NftOptions } from './nft.js';

interface Waiting {
  readonly script: string;
  resolve(): void;
  reject(error: unknown): void;
}

export type ScriptRunner = (script: string, options: NftOptions) => Promise<void>;

export class NftBatch {
  private waiting: Waiting[] = [];

  constructor(
    private readonly options: NftOptions = {},
    private run: ScriptRunner = runNft,
  ) {}

  /** From now on the runs go to `run` instead of an nft process each (the guard's `nft -i`, backend.ts). */
  through(run: ScriptRunner): void {
    this.run = run;
  }

  /** Applies `script` (a whole transaction of its own) together with the others asked for in this turn. */
  apply(script: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ script, resolve, reject });
      // After this turn's microtasks: every enforcer handed the same event has asked by then.
      if (this.waiting.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length > 1) {
      const joint = await this.run(batch.map((w) => w.script).join(''), this.options).then(() => true, () => false);
      if (joint) return batch.forEach((w) => w.resolve());
    }
    for (const w of batch) await this.run(w.script, this.options).then(w.resolve, w.reject);
  }
}

const batches = new Map<string, NftBatch>();

/** The batch every table of one network namespace shares (the host's: no `netns`). */
export function nftBatch(options: NftOptions = {}): NftBatch {
  const key = options.netns ?? '';
  let batch = batches.get(key);
  if (!batch) batches.set(key, (batch = new NftBatch({ netns: options.netns })));
  return batch;
}
