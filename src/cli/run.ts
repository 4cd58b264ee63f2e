import type { Config } from '../app/config.js';
import { startDaemon } from '../app/daemon.js';
import { createLogger } from '../app/logger.js';

export async function runCommand(config: Config): Promise<number> {
  const log = createLogger(config.log.level);
  const daemon = await startDaemon(config, log);
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signal === 'SIGHUP') void daemon.reload();
    else void daemon.shutdown();
  };
  for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.on(signal, onSignal);
  const code = await daemon.exited;
  for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.off(signal, onSignal);
  log.flush();
  return code;
}
