import { appendFileSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { watchPolicyFile } from '../../src/app/policy-file-watch.js';

/**
 * Watches `file` for the test's length; `heard(act)` does `act` and waits (10 s at most) for the watch
 * to call back after it. Each act makes one inotify event for the watched name (an append, a rename),
 * so that an event cannot be heard for the act after its own.
 */
function watched(t: Test, file: string) {
  let wake: (() => void) | null = null;
  const watch = watchPolicyFile(file, () => wake?.(), (e) => t.error(e));
  t.teardown(() => watch.close());
  return {
    heard(act: () => void): Promise<boolean> {
      const called = new Promise<boolean>((resolve) => {
        wake = () => resolve(true);
        setTimeout(() => resolve(false), 10_000).unref();
      });
      act();
      return called;
    },
  };
}

/** Points the link at `target` the way config management does: a new link renamed over the old path. */
function relink(link: string, target: string): void {
  symlinkSync(target, `${link}.new`);
  renameSync(`${link}.new`, link);
}

t.test('a plain policy file: written in place, and replaced as editors do', async (t) => {
  const dir = t.testdir({ 'policy.yaml': 'version: 1\n' });
  const { heard } = watched(t, `${dir}/policy.yaml`);
  t.ok(await heard(() => appendFileSync(`${dir}/policy.yaml`, 'mode: audit\n')), 'a write in place');
  writeFileSync(`${dir}/policy.yaml.tmp`, 'version: 1\n');
  t.ok(await heard(() => renameSync(`${dir}/policy.yaml.tmp`, `${dir}/policy.yaml`)), 'a new file renamed over it');
});

t.test('a policy linked from elsewhere: saving the file it links to is heard, and so is the link pointed elsewhere', async (t) => {
  const dir = t.testdir({ etc: {}, checkout: { 'policy.yaml': 'version: 1\n' }, other: { 'policy.yaml': 'version: 1\n' } });
  symlinkSync(`${dir}/checkout/policy.yaml`, `${dir}/etc/policy.yaml`);
  const { heard } = watched(t, `${dir}/etc/policy.yaml`);
  t.ok(await heard(() => appendFileSync(`${dir}/checkout/policy.yaml`, 'mode: audit\n')), 'the linked file saved (nothing changes in the directory of the link)');
  t.ok(await heard(() => relink(`${dir}/etc/policy.yaml`, `${dir}/other/policy.yaml`)), 'the link replaced by one to another file');
  t.ok(await heard(() => appendFileSync(`${dir}/other/policy.yaml`, 'mode: enforce\n')), 'the new target saved');
});

t.test("a link whose target's directory is made later: watched once the link is followed again", async (t) => {
  const dir = t.testdir({ etc: { 'policy.yaml': 'version: 1\n' } });
  const { heard } = watched(t, `${dir}/etc/policy.yaml`);
  mkdirSync(`${dir}/later`);
  writeFileSync(`${dir}/later/policy.yaml`, 'version: 1\n');
  t.ok(await heard(() => relink(`${dir}/etc/policy.yaml`, `${dir}/later/policy.yaml`)), 'the plain file replaced by a link');
  t.ok(await heard(() => appendFileSync(`${dir}/later/policy.yaml`, 'mode: audit\n')), "the link's target saved");
});

t.test('the directory of the path cannot be watched: the caller is told (it falls back to SIGHUP)', async (t) => {
  const dir = t.testdir({});
  t.throws(() => watchPolicyFile(`${dir}/missing/policy.yaml`, () => {}, (e) => t.error(e)));
});
