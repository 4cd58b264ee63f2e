import type { Config } from '../app/config.js';
import { startDaemon, type DaemonHandle } from '../app/daemon.js';
import { createLogger } from '../app/logger.js';
import { prettyDestination } from './pretty-log.js';

const SIGNALS = ['SIGHUP', 'SIGTERM', 'SIGINT'] as const;

export async function runCommand(config: Config, format: 'json' | 'pretty'): Promise<number> {
  const log = createLogger(config.log.level, format === 'pretty' ? prettyDestination(process.stdout) : process.stdout);
  // Handlers first: a SIGTERM during start-up (firewall, metrics socket) is a clean stop once
  // started, not node's default death by signal. A SIGHUP then is moot: the policy is being read.
  let daemon: DaemonHandle | null = null;
  let stopRequested = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (daemon === null) stopRequested ||= signal !== 'SIGHUP';
    else if (signal === 'SIGHUP') void daemon.reload();
    else void daemon.shutdown();
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  daemon = await startDaemon(config, log);
  if (stopRequested) void daemon.shutdown();
  const code = await daemon.exited;
  for (const signal of SIGNALS) process.off(signal, onSignal);
  log.flush();
  return code;
}
