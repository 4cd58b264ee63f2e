/**
 * The `nft -i` reply protocol (src/adapters/nftables/nft-session.ts): what nft 1.0.6 prints on stderr
 * for a command and the marker line after it, as recorded from the real nft (test/integration/nft-session.test.ts
 * checks the same against it).
 */
import t from 'tap';
import { replyError, replyMarker, takeReply } from '../../src/adapters/nftables/nft-session.js';

/** nft's answer to the marker line: a syntax error that echoes it. */
const answer = (seq: number): string => `Error: syntax error, unexpected newline, expecting string\n${replyMarker(seq)}\n${' '.repeat(replyMarker(seq).length)}^\n`;
const FAILED = 'In file included from <cmdline>:1:1-40:\n/tmp/dockwarden-nft-Ab12/script.nft:2:30-35: Error: No such file or directory\nadd element inet dockwarden nosuch { 3.3.3.3 }\n                            ^^^^^^\n';

t.test('an applied command: nothing before the answer', async (t) => {
  t.same(takeReply(answer(1), replyMarker(1)), { reply: '', rest: '' });
});

t.test('a failed command: what nft printed before the answer is the reply; what follows stays for the next', async (t) => {
  t.same(takeReply(FAILED + answer(7) + 'Error: x', replyMarker(7)), { reply: FAILED, rest: 'Error: x' });
});

t.test('an answer not all there yet: no reply', async (t) => {
  const whole = FAILED + answer(3);
  // nft's stderr arrives in pieces ("Error: " alone was seen); every cut short of the carets' newline is incomplete.
  for (let cut = 0; cut < whole.length; cut++) {
    if (takeReply(whole.slice(0, cut), replyMarker(3)) !== null) return t.fail(`a reply taken from ${cut} of ${whole.length} characters`);
  }
  t.same(takeReply(whole, replyMarker(3)), { reply: FAILED, rest: '' });
});

t.test('another command\'s marker is not this one\'s (1 is not 12)', async (t) => {
  t.equal(takeReply(answer(12), replyMarker(1)), null);
  t.equal(takeReply(answer(1), replyMarker(12)), null);
});

t.test('a reply is a failure when nft says Error, located in the included script as with nft -f', async (t) => {
  const script = 'add element inet dockwarden ports4 { 10.0.0.1 . tcp . 80 }\nadd element inet dockwarden nosuch { 3.3.3.3 }\n';
  t.equal(replyError('', script), null, 'nothing said: applied');
  const error = replyError(FAILED, script);
  t.equal(error?.line, 2);
  t.equal(error?.inputLine, 'add element inet dockwarden nosuch { 3.3.3.3 }');
  t.match(error?.message, /^nft: No such file or directory \(line 2: /);
  // Not located (a command of the line itself): the first error is the message.
  const unlocated = replyError('Error: Could not process rule: Operation not permitted\ndelete table inet g\n                  ^\n', script);
  t.equal(unlocated?.message, 'nft: Could not process rule: Operation not permitted');
  t.equal(unlocated?.line, null);
});
