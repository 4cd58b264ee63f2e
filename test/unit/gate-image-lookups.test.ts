import t from 'tap';
import { gateImages, TRUST_MS } from '../../src/app/gate/image-lookups.js';

/**
 * The gate's kept image look-ups: used only while nothing can have moved a name. dockerd's side is a
 * scripted look-up here (which image a name names, each answer when the test releases it): the
 * orderings that matter — an answer arriving after a change — cannot be produced on demand with a
 * real engine. The real engine's version is test/integration/gate-daemon.test.ts.
 */

function engine() {
  const names = new Map<string, string>([['web:1', 'sha256:a']]);
  const pending: Array<() => void> = [];
  let asked = 0;
  let held = false;
  const lookUp = async (reference: string) => {
    asked++;
    const id = names.get(reference);
    const answer = id === undefined ? null : { Id: id, Config: { User: '' } };
    if (held) await new Promise<void>((resolve) => pending.push(resolve));
    return answer;
  };
  return {
    names,
    lookUp,
    get asked() { return asked; },
    hold() { held = true; },
    release() { held = false; pending.splice(0).forEach((resolve) => resolve()); },
  };
}

t.test('kept while nothing moves; asked again after each sign that something may have', async (t) => {
  const dockerd = engine();
  const images = gateImages(dockerd.lookUp);
  images.watching(true);
  t.equal((await images.inspect('web:1'))?.Id, 'sha256:a');
  t.equal((await images.inspect('web:1'))?.Id, 'sha256:a');
  t.equal(dockerd.asked, 1, 'the second create found it kept');

  // `docker tag b web:1`: dockerd asks the gate, moves the name, sends the gate its answer.
  images.requestAllowed('POST', '/v1.41/images/b/tag?repo=web&tag=1');
  dockerd.names.set('web:1', 'sha256:b');
  images.requestAnswered('POST', '/v1.41/images/b/tag?repo=web&tag=1');
  t.equal((await images.inspect('web:1'))?.Id, 'sha256:b', 'judged on the image it names now');

  images.imagesMayHaveChanged(); // an image event (a swarm task's pull moves names with no request)
  dockerd.names.set('web:1', 'sha256:c');
  t.equal((await images.inspect('web:1'))?.Id, 'sha256:c');
  t.equal(dockerd.asked, 3);

  // Reads and container requests move nothing.
  images.requestAllowed('GET', '/images/json');
  images.requestAnswered('GET', '/images/json');
  images.requestAllowed('POST', '/containers/x/start');
  images.requestAnswered('POST', '/containers/x/start');
  await images.inspect('web:1');
  t.equal(dockerd.asked, 3, 'still kept');
});

t.test('not used while a request that may move names is in flight, nor while events may go unseen', async (t) => {
  const dockerd = engine();
  const images = gateImages(dockerd.lookUp);
  await images.inspect('web:1');
  await images.inspect('web:1');
  t.equal(dockerd.asked, 2, 'nothing kept before the event stream is up');
  images.watching(true);
  await images.inspect('web:1');
  images.requestAllowed('POST', '/images/create?fromImage=web&tag=1');
  await images.inspect('web:1');
  await images.inspect('web:1');
  t.equal(dockerd.asked, 5, 'a pull in flight: every create asks');
  images.requestAnswered('POST', '/images/create?fromImage=web&tag=1');
  await images.inspect('web:1');
  await images.inspect('web:1');
  t.equal(dockerd.asked, 6, 'kept again once it is answered');
  images.watching(false);
  await images.inspect('web:1');
  t.equal(dockerd.asked, 7, 'the event stream lost: asked');
  images.watching(true);
  await images.inspect('web:1');
  t.equal(dockerd.asked, 8, 'and back: what was kept before is not used (events may have been missed)');
  // Two of the same request in flight: one answer ends one.
  images.requestAllowed('DELETE', '/images/web:1');
  images.requestAllowed('DELETE', '/images/web:1');
  images.requestAnswered('DELETE', '/images/web:1');
  await images.inspect('web:1');
  await images.inspect('web:1');
  t.equal(dockerd.asked, 10, 'one still in flight');
  // An answer to a request asked about before this gate ran ends nothing it follows.
  images.requestAnswered('POST', '/images/load');
  await images.inspect('web:1');
  t.equal(dockerd.asked, 11);
});

t.test('a look-up that began before a change is not kept', async (t) => {
  const dockerd = engine();
  const images = gateImages(dockerd.lookUp);
  images.watching(true);
  dockerd.hold();
  const stale = images.inspect('web:1'); // dockerd answers sha256:a …
  images.requestAllowed('POST', '/images/b/tag?repo=web&tag=1'); // … while a tag is asked about,
  dockerd.names.set('web:1', 'sha256:b');
  images.requestAnswered('POST', '/images/b/tag?repo=web&tag=1'); // done, and answered
  dockerd.release();
  t.equal((await stale)?.Id, 'sha256:a', 'the create in flight meanwhile was judged on what dockerd said then');
  t.equal((await images.inspect('web:1'))?.Id, 'sha256:b', 'the next one is not judged on it');

  images.imagesMayHaveChanged(); // so that the next look-up asks dockerd
  dockerd.hold();
  const racing = images.inspect('web:1');
  images.imagesMayHaveChanged();
  dockerd.release();
  await racing;
  await images.inspect('web:1');
  t.equal(dockerd.asked, 4, 'an image event during a look-up: not kept either');
});

t.test('bounded: trusted for a while only, missing images never kept, long references never kept', async (t) => {
  const dockerd = engine();
  let clock = 0;
  const images = gateImages(dockerd.lookUp, () => clock);
  images.watching(true);
  await images.inspect('web:1');
  clock += TRUST_MS - 1;
  await images.inspect('web:1');
  t.equal(dockerd.asked, 1);
  clock += 1;
  await images.inspect('web:1');
  t.equal(dockerd.asked, 2, 'asked again once TRUST_MS old');
  t.equal(await images.inspect('missing:1'), null);
  t.equal(await images.inspect('missing:1'), null);
  t.equal(dockerd.asked, 4, 'a missing image is asked about each time (dockerd answers 404 to the create anyway)');
  const long = `web:${'x'.repeat(600)}`;
  dockerd.names.set(long, 'sha256:a');
  await images.inspect(long);
  await images.inspect(long);
  t.equal(dockerd.asked, 6);
});
