import t from 'tap';
import { getPriority } from 'node:os';
import { runTool } from '../../src/adapters/firewall/run-tool.js';

// The tool waits for its input, which runTool writes after lowering its priority; then reports the
// niceness of a process it starts (field 19 of /proc/PID/stat), which it passes on as nft would.
const niceness = (background: boolean) =>
  runTool(['sh', '-c', 'read line; cut -d" " -f19 /proc/self/stat'], 'go\n', undefined, undefined, background);

t.test('a background run gets a low CPU priority; an ordinary one keeps ours', async (t) => {
  t.equal((await niceness(false)).trim(), String(getPriority()));
  t.equal((await niceness(true)).trim(), '10');
});
