import type { DaemonHandle } from '../app/daemon.js';

const SIGNALS = ['SIGHUP', 'SIGTERM', 'SIGINT'] as const;

export interface DaemonSignals {
  /** The daemon exists: signals reach it from now on, and a stop asked for before is honoured now. */
  started(daemon: DaemonHandle): void;
  /** Back to node's default handling. */
  release(): void;
}

/**
 * The daemon's signal handlers, installed by `dockwarden run` before its modules load (about a second
 * on a loaded host): without a handler a SIGHUP kills node, and systemd counts a death by SIGHUP as a
 * clean exit, so `Restart=on-failure` would not bring the daemon back. A SIGHUP before the daemon
 * exists is a reload once it has started (its policy is read while its modules load, perhaps before
 * the change the signal announces); a SIGTERM or SIGINT is a clean stop once started.
 */
export function holdDaemonSignals(): DaemonSignals {
  let daemon: DaemonHandle | null = null;
  let stopRequested = false;
  let reloadRequested = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (daemon === null) {
      if (signal === 'SIGHUP') reloadRequested = true;
      else stopRequested = true;
    } else if (signal === 'SIGHUP') void daemon.reload();
    else void daemon.shutdown();
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  return {
    started(started) {
      daemon = started;
      if (stopRequested) void started.shutdown();
      else if (reloadRequested) void started.reload();
    },
    release() {
      for (const signal of SIGNALS) process.off(signal, onSignal);
    },
  };
}
