import type { Config } from '../app/config.js';
import { startDaemon } from '../app/daemon.js';
import { createLogger } from '../app/logger.js';
import type { DaemonSignals } from './daemon-signals.js';
import { prettyDestination } from './pretty-log.js';

/** `signals` were installed before this module loaded (src/cli/daemon-signals.ts). */
export async function runCommand(config: Config, format: 'json' | 'pretty', signals: DaemonSignals): Promise<number> {
  const log = createLogger(config.log.level, format === 'pretty' ? prettyDestination(process.stdout) : process.stdout);
  const daemon = await startDaemon(config, log);
  signals.started(daemon);
  const code = await daemon.exited;
  signals.release();
  log.flush();
  return code;
}
