import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { spawnDaemon } from '../helpers/daemon.js';

/**
 * What `dockwarden run` loads on its own thread stays on its heap for its life (issue #18, idle RSS):
 * zod with its locales and the policy's schema cost ~8 MiB there, so the policy is read and validated
 * in a worker thread, at start-up as on reloads, and the config's webhooks by zod's tree-shakable build.
 * The daemon here stops at its invalid policy, before it touches the firewall or the engine.
 */
t.test("the daemon's thread loads neither zod's full build nor the policy's schema; the worker still judges the policy", async (t) => {
  const dir = t.testdir({});
  const loads = `${dir}/loads`;
  const daemon = spawnDaemon({
    policy: 'version: 1\nports:\n  default: maybe\n',
    dockerSocket: `${dir}/no-engine.sock`,
    wrapper: ['env', `NODE_OPTIONS=--import=${resolve(import.meta.dirname, '../helpers/record-loads.mjs')}`, `DW_TEST_LOADS_FILE=${loads}`],
  });
  t.teardown(() => daemon.stop('SIGKILL'));
  t.equal(await daemon.exited, 1, 'an invalid policy at start-up is fatal');
  const fatal = daemon.logs.find((l) => l.msg === 'policy invalid; not starting');
  t.match(fatal?.errors, [/policy\.yaml:3:12: ports\.default: "maybe" is not allowed here/], 'located by the schema, in the worker');

  const files = readFileSync(loads, 'utf8').split('\n').filter((url) => url.startsWith('file:')).map((url) => fileURLToPath(url));
  t.ok(files.some((f) => f.endsWith('/dist/cli/run.js')), "the daemon's modules were loaded (and recorded)");
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    // zod's English locale (only the full build sets it) and a message of the policy's schema.
    t.notOk(text.includes('Invalid input: expected'), `${file}: no zod locale`);
    t.notOk(text.includes('missing required key'), `${file}: no policy schema`);
  }
});
