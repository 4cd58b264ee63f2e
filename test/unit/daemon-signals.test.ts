import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import t from 'tap';

/**
 * `dockwarden run`'s signals before and after the daemon exists, as real signals to a process of its
 * own (the test runner has handlers of its own for them): each line what a counting daemon was asked.
 */
function run(steps: string): string[] {
  const script = `
    import { once } from 'node:events';
    import { holdDaemonSignals } from ${JSON.stringify(resolve(import.meta.dirname, '../../src/cli/daemon-signals.ts'))};
    const asked = [];
    const daemon = { exited: new Promise(() => {}), reload: async () => void asked.push('reload'), shutdown: async () => void asked.push('shutdown') };
    const signals = holdDaemonSignals();
    const alive = setInterval(() => {}, 1000); // a signal awaited does not keep node running
    const signal = async (name) => { const seen = once(process, name); process.kill(process.pid, name); await seen; };
    ${steps}
    signals.release();
    clearInterval(alive);
    process.stdout.write(asked.join('\\n'));
  `;
  // Only the runner's TypeScript loader: the module under test is TypeScript.
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  return execFileSync(process.execPath, [...loader, '--input-type=module', '-e', script], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

// The policy's read starts while the daemon's modules load (src/cli/main.ts): a change announced meanwhile must not be lost.
t.test('a SIGHUP before the daemon exists is a reload once it has started; later ones reload at once', async (t) => {
  t.same(run(`await signal('SIGHUP'); signals.started(daemon); await signal('SIGHUP');`), ['reload', 'reload']);
  t.same(run(`signals.started(daemon);`), [], 'none without a signal');
});

t.test('a SIGTERM before the daemon exists is a stop once it has started, and no reload with it', async (t) => {
  t.same(run(`await signal('SIGHUP'); await signal('SIGTERM'); signals.started(daemon);`), ['shutdown']);
});
