// Real nf_tables notifications, captured from the kernel: `unshare --net node nft-capture.mjs` (root;
// a network namespace of its own, so nothing of the host's ruleset is touched or heard) reads nft
// scripts, one per line of its stdin (a JSON array of strings), applies each with `nft -f -` and
// prints a JSON array with, per script, the hex bytes of each datagram the kernel multicast for it
// (native/nft_events.c in raw mode, the socket the daemon reads). A script's transaction ends with
// NFT_MSG_NEWGEN, so its datagrams are complete once that one has arrived.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const addon = createRequire(import.meta.url)('../../native/build/Release/dw_nftevents.node');
const NEWGEN = (10 << 8) | 15; // NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN
const scripts = JSON.parse(readFileSync(0, 'utf8'));

/** Whether one of the datagram's messages is NEWGEN (message headers only; the parser under test reads the rest). */
function endsTransaction(datagram) {
  for (let at = 0; at + 16 <= datagram.length; ) {
    const len = datagram.readUInt32LE(at);
    if (datagram.readUInt16LE(at + 4) === NEWGEN) return true;
    if (len < 16) return false;
    at += (len + 3) & ~3;
  }
  return false;
}

let current = [];
let waiting = null;
const watch = addon.watch((datagram) => {
  if (datagram.length === 0) throw new Error('notifications lost during the capture');
  current.push(datagram.toString('hex'));
  if (waiting && endsTransaction(datagram)) waiting();
}, true);

const captured = [];
for (const script of scripts) {
  current = [];
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no NEWGEN within 5 s after: ${script}`)), 5000);
    waiting = () => (clearTimeout(timer), resolve());
  });
  execFileSync('nft', ['-f', '-'], { input: script });
  await done;
  captured.push(current);
}
watch.close();
process.stdout.write(JSON.stringify(captured));
