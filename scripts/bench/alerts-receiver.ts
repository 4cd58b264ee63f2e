/**
 * The syslog receiver of scripts/bench/alerts.ts, in a process of its own: in the bench's event loop
 * it could not drain its socket while the sender runs (it would measure its own backlog), and the
 * unix-dgram addon cannot load in a worker thread. Sends `{ target }` once listening, then the record
 * count whenever it changed, every 5 ms.
 */
import { SyslogReceiver } from '../../test/helpers/syslog-receiver.js';

const kind = process.argv[2] as 'udp' | 'tcp' | 'unix';
const receiver = new SyslogReceiver();
const target = kind === 'udp' ? await receiver.udp() : kind === 'tcp' ? await receiver.tcp() : receiver.unix();
process.send!({ target });
let last = -1;
const timer = setInterval(() => {
  if (receiver.records.length !== last) process.send!({ count: (last = receiver.records.length) });
}, 5);
process.on('message', (message: string) => {
  if (message === 'reset') (receiver.records.length = 0), (last = -1);
  if (message === 'close') void receiver.close().then(() => (clearInterval(timer), process.disconnect()));
});
