// runTool with real processes: what each kind of failure looks like to its callers.
import t from 'tap';
import { getPriority } from 'node:os';
import { isToolError, quotedLine, runTool, ToolError } from '../../src/adapters/firewall/run-tool.js';

const failure = async (promise: Promise<unknown>): Promise<ToolError> => {
  const error = await promise.then(() => null, (e: unknown) => e);
  if (!isToolError(error)) throw new Error(`expected a ToolError, got ${String(error)}`);
  return error;
};

t.test('stdin in, stdout out', async (t) => {
  t.equal(await runTool(['cat'], 'a line\n', undefined), 'a line\n');
});

t.test('a non-zero exit: the exit code, stderr, and its first line in the message', async (t) => {
  const error = await failure(runTool(['ls', '/nonexistent-dw-run-tool'], '', undefined));
  t.equal(error.tool, 'ls');
  t.equal(error.exitCode, 2);
  t.equal(error.timedOut, false);
  t.match(error.stderr, /No such file or directory/);
  t.match(error.message, /^ls: .*No such file or directory/);
  t.equal(error.line, null);
});

t.test('a tool that cannot be started: no exit code, the spawn error', async (t) => {
  const error = await failure(runTool(['/nonexistent-dw-tool'], '', undefined));
  t.equal(error.tool, 'nonexistent-dw-tool');
  t.equal(error.exitCode, null);
  t.equal(error.timedOut, false);
  t.match(error.message, /ENOENT/);
});

t.test('a tool past its deadline is killed and says so', async (t) => {
  const error = await failure(runTool(['sleep', '30'], '', undefined, 100));
  t.equal(error.timedOut, true);
  t.equal(error.exitCode, null);
  t.equal(error.message, 'sleep: killed after 100 ms');
});

t.test('a network namespace name that is not one is refused before anything runs', async (t) => {
  t.throws(() => runTool(['true'], '', '../etc'), TypeError);
});

t.test('quotedLine: the 1-based line, trimmed and shortened for messages', async (t) => {
  t.same(quotedLine('a\n\tb \nc', 2), { text: '\tb ', shown: 'b' });
  t.equal(quotedLine('x'.repeat(300), 1).shown, `${'x'.repeat(200)}…`);
  t.same(quotedLine('a', 5), { text: '', shown: '' });
});

// The tool waits for its input, which runTool writes after lowering its priority; then reports the
// niceness of a process it starts (field 19 of /proc/PID/stat), which it passes on as nft would.
const niceness = (background: boolean) =>
  runTool(['sh', '-c', 'read line; cut -d" " -f19 /proc/self/stat'], 'go\n', undefined, undefined, background);

t.test('a background run gets a low CPU priority; an ordinary one keeps ours', async (t) => {
  t.equal((await niceness(false)).trim(), String(getPriority()));
  t.equal((await niceness(true)).trim(), '10');
});
