import type { Config } from '../app/config.js';
import type { PolicyResult } from '../domain/policy/result.js';
import { startDaemon } from '../app/daemon.js';
import { createLogger } from '../app/logger.js';
import type { DaemonSignals } from './daemon-signals.js';
import { prettyDestination } from './pretty-log.js';

/** `signals` were installed and the policy's read started before this module loaded (src/cli/main.ts). */
export async function runCommand(config: Config, format: 'json' | 'pretty', signals: DaemonSignals, policy: Promise<PolicyResult>): Promise<number> {
  const log = createLogger(config.log.level, format === 'pretty' ? prettyDestination(process.stdout) : process.stdout);
  const daemon = await startDaemon(config, log, policy);
  signals.started(daemon);
  const code = await daemon.exited;
  signals.release();
  log.flush();
  return code;
}
