import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { watchPolicyFile } from '../../src/app/policy-file-watch.js';

/** Counts the watch's calls; `next()` waits (10 s at most) for one more than were counted when it was asked. */
function calls() {
  let count = 0;
  const waiting: Array<{ above: number; resolve: (ok: boolean) => void }> = [];
  return {
    changed: () => {
      count += 1;
      for (const w of waiting.splice(0)) if (count > w.above) w.resolve(true);
      else waiting.push(w);
    },
    next(): Promise<boolean> {
      const above = count;
      return new Promise((resolve) => {
        waiting.push({ above, resolve });
        setTimeout(() => resolve(false), 10_000).unref();
      });
    },
  };
}

t.test('a plain policy file: written in place, and replaced as editors do', async (t) => {
  const dir = t.testdir({ 'policy.yaml': 'version: 1\n' });
  const seen = calls();
  const watch = watchPolicyFile(`${dir}/policy.yaml`, seen.changed, (e) => t.error(e));
  t.teardown(() => watch.close());
  let next = seen.next();
  writeFileSync(`${dir}/policy.yaml`, 'version: 1\nmode: audit\n');
  t.ok(await next, 'a write in place');
  next = seen.next();
  writeFileSync(`${dir}/policy.yaml.tmp`, 'version: 1\n');
  renameSync(`${dir}/policy.yaml.tmp`, `${dir}/policy.yaml`);
  t.ok(await next, 'a new file renamed over it');
});

t.test('a policy linked from elsewhere: saving the file it links to is heard, and so is the link pointed elsewhere', async (t) => {
  const dir = t.testdir({ etc: {}, checkout: { 'policy.yaml': 'version: 1\n' }, other: { 'policy.yaml': 'version: 1\n' } });
  symlinkSync(`${dir}/checkout/policy.yaml`, `${dir}/etc/policy.yaml`);
  const seen = calls();
  const watch = watchPolicyFile(`${dir}/etc/policy.yaml`, seen.changed, (e) => t.error(e));
  t.teardown(() => watch.close());

  let next = seen.next();
  writeFileSync(`${dir}/checkout/policy.yaml`, 'version: 1\nmode: audit\n');
  t.ok(await next, 'the linked file saved (nothing changes in the directory of the link)');

  next = seen.next();
  symlinkSync(`${dir}/other/policy.yaml`, `${dir}/etc/policy.yaml.new`);
  renameSync(`${dir}/etc/policy.yaml.new`, `${dir}/etc/policy.yaml`);
  t.ok(await next, 'the link replaced by one to another file');

  next = seen.next();
  writeFileSync(`${dir}/other/policy.yaml`, 'version: 1\nmode: enforce\n');
  t.ok(await next, 'the new target saved');
});

t.test("a link whose target's directory is made later: watched once the link is followed again", async (t) => {
  const dir = t.testdir({ etc: { 'policy.yaml': 'version: 1\n' } });
  const seen = calls();
  const watch = watchPolicyFile(`${dir}/etc/policy.yaml`, seen.changed, (e) => t.error(e));
  t.teardown(() => watch.close());
  mkdirSync(`${dir}/later`);
  writeFileSync(`${dir}/later/policy.yaml`, 'version: 1\n');
  let next = seen.next();
  symlinkSync(`${dir}/later/policy.yaml`, `${dir}/etc/policy.yaml.new`);
  renameSync(`${dir}/etc/policy.yaml.new`, `${dir}/etc/policy.yaml`);
  t.ok(await next, 'the plain file replaced by a link');
  next = seen.next();
  writeFileSync(`${dir}/later/policy.yaml`, 'version: 1\nmode: audit\n');
  t.ok(await next, "the link's target saved");
});

t.test('the directory of the path cannot be watched: the caller is told (it falls back to SIGHUP)', async (t) => {
  const dir = t.testdir({});
  t.throws(() => watchPolicyFile(`${dir}/missing/policy.yaml`, () => {}, (e) => t.error(e)));
});
