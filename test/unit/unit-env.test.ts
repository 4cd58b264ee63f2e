import t from 'tap';
import { daemonEnvironment } from '../helpers/daemon.js';
import { unitEnvironment } from '../helpers/unit-env.js';

// The memory settings live in the unit alone (issue #18); the harness and the benches read them from there.
t.test('the unit sets the memory settings of node and glibc', async (t) => {
  t.same(unitEnvironment(), { NODE_OPTIONS: '--max-semi-space-size=1', MALLOC_MMAP_THRESHOLD_: '131072', MALLOC_ARENA_MAX: '2' });
});

t.test("the test harness runs the daemon with the unit's environment, without the runner's NODE_OPTIONS", async (t) => {
  const env = daemonEnvironment({ NODE_OPTIONS: '--import=/runner/loader.mjs', TAP_CHILD_ID: '3', KEEP: 'x' }, { OWN: 'y' });
  t.equal(env.NODE_OPTIONS, '--max-semi-space-size=1');
  t.equal(env.MALLOC_MMAP_THRESHOLD_, '131072');
  t.equal(env.MALLOC_ARENA_MAX, '2');
  t.equal(env.KEEP, 'x');
  t.equal(env.OWN, 'y');
  t.notOk('TAP_CHILD_ID' in env);
});
