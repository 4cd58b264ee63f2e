/**
 * The webhook receiver of scripts/bench/chaos.ts, in a process of its own started inside the soak's
 * network namespace (the daemon there posts to 127.0.0.1 of that namespace, which the bench's own
 * process cannot listen on). Standard Webhooks signature checked with the key in argv[2] (base64).
 * Sends `{ url }` once listening, then `{ id }` for every alert id the first time it arrives.
 * Messages: 'down' closes the port for real, 'up' opens the same port again, 'close' ends it.
 */
import { WebhookReceiver } from '../../test/helpers/webhook-receiver.js';

const receiver = new WebhookReceiver(Buffer.from(process.argv[2] ?? '', 'base64'));
await receiver.up();
process.send!({ url: receiver.url });
const sent = new Set<string>();
const timer = setInterval(() => {
  for (const id of receiver.deliveries.keys()) if (!sent.has(id)) sent.add(id), process.send!({ id });
}, 20);
process.on('message', (message: string) => {
  if (message === 'down') void receiver.down().then(() => process.send!({ down: true }));
  if (message === 'up') void receiver.up().then(() => process.send!({ up: true, rejected: receiver.rejected.length }));
  if (message === 'close') void receiver.down().then(() => (clearInterval(timer), process.send!({ rejected: receiver.rejected.length, repeats: receiver.repeats }), process.disconnect()));
});
