import t from 'tap';
import { gateCreates, WAIT_MS } from '../../src/app/gate/gate-creates.js';

/** Which containers the gate judged clean at their create, for the event path's `create` event. */

const id = (n: number) => n.toString(16).padStart(64, '0');
/** A create as dockerd asks about it and, with its answer, repeats it. */
const request = (n: number) => ({ uri: '/v1.41/containers/create', body: Buffer.from(JSON.stringify({ Image: 'busybox', Cmd: ['sleep', String(n)] })) });
const settledYet = async (p: Promise<unknown>) => {
  let settled = false;
  void p.then(() => (settled = true));
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
};

t.test('a clean create the gate allowed and dockerd answered is judged once', async (t) => {
  const creates = gateCreates();
  creates.allowed(request(1), true);
  creates.answered(request(1), id(1));
  t.equal(await creates.judgedAtCreate(id(1)), true);
  t.equal(await creates.judgedAtCreate(id(1)), false, 'told once');
  t.equal(await creates.judgedAtCreate(id(2)), false, 'nothing in flight: not the gate\'s, at once');
});

t.test('a create with a violation is judged again at its event (its alert comes when it appears)', async (t) => {
  const creates = gateCreates();
  creates.allowed(request(1), false);
  creates.answered(request(1), id(1));
  t.equal(await creates.judgedAtCreate(id(1)), false);
});

t.test('answers are matched to the creates they answer, whatever their order', async (t) => {
  const creates = gateCreates();
  creates.allowed(request(1), false);
  creates.allowed(request(2), true);
  creates.answered(request(2), id(2));
  creates.answered(request(1), id(1));
  t.equal(await creates.judgedAtCreate(id(1)), false, 'the one with a violation');
  t.equal(await creates.judgedAtCreate(id(2)), true, 'the clean one');
});

t.test('the event before the answer waits for it', async (t) => {
  const creates = gateCreates();
  creates.allowed(request(1), true);
  const verdict = creates.judgedAtCreate(id(1));
  t.equal(await settledYet(verdict), false);
  creates.answered(request(1), id(1));
  t.equal(await verdict, true);
});

t.test('an event no create in flight answers is judged once they are all answered', async (t) => {
  const creates = gateCreates();
  creates.allowed(request(1), true);
  creates.allowed(request(2), true);
  const verdict = creates.judgedAtCreate(id(9));
  creates.answered(request(1), id(1));
  t.equal(await settledYet(verdict), false, 'the other create in flight may be this one');
  creates.answered(request(2), null); // it failed with an answer, or its answer could not be read
  t.equal(await verdict, false);
  t.equal(await creates.judgedAtCreate(id(1)), true, 'the answered one is still known');
});

t.test('a create dockerd never answers (it failed) holds an event at most WAIT_MS', async (t) => {
  let clock = 0;
  const creates = gateCreates(() => clock);
  creates.allowed(request(1), true);
  const verdict = creates.judgedAtCreate(id(1));
  clock = WAIT_MS; // the timer fires after WAIT_MS of real time; the clock says it has passed
  t.equal(await verdict, false);
  creates.answered(request(1), id(1)); // too late: not followed any more, so not the gate's judgement
  t.equal(await creates.judgedAtCreate(id(1)), false);
});

t.test('an answer to a create not allowed by this daemon (one from before its start) is not its judgement', async (t) => {
  const creates = gateCreates();
  creates.allowed(request(2), true);
  creates.answered(request(1), id(1));
  creates.answered(request(2), id(2));
  t.equal(await creates.judgedAtCreate(id(1)), false);
  t.equal(await creates.judgedAtCreate(id(2)), true);
});

t.test('ids whose event never comes are not kept without bound', async (t) => {
  let clock = 0;
  const creates = gateCreates(() => clock);
  for (let n = 0; n < 1100; n++) {
    creates.allowed(request(n), true);
    creates.answered(request(n), id(n));
  }
  t.equal(await creates.judgedAtCreate(id(0)), false, 'the oldest went past 1,024');
  t.equal(await creates.judgedAtCreate(id(1099)), true);
  creates.allowed(request(1), true);
  creates.answered(request(1), id(5000));
  clock = 60_000;
  creates.allowed(request(2), true);
  creates.answered(request(2), id(5001)); // the next answer drops what is a minute old
  t.equal(await creates.judgedAtCreate(id(5000)), false);
  t.equal(await creates.judgedAtCreate(id(5001)), true);
});
