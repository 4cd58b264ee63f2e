import t from 'tap';
import { comparableJson, type Json } from '../../src/adapters/nftables/nft.js';

t.test('comparableJson: what changes without a change of the table is blanked, nothing else', async (t) => {
  const rule = (packets: number, path: string, handle: number, chain = 'published'): Json => ({
    rule: {
      chain, handle,
      expr: [
        { match: { op: '==', left: { socket: { key: 'cgroupv2', level: 1 } }, right: path } },
        { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } },
        { counter: { packets, bytes: packets * 60 } },
      ],
    },
  });
  const a = comparableJson([rule(1, 'system.slice/docker.service', 7)]);
  t.equal(comparableJson([rule(900, 'sys/fs/other', 7)]), a, 'counter values and the cgroupv2 path (nft finds it by inode) do not count');
  t.not(comparableJson([rule(1, 'system.slice/docker.service', 8)]), a, 'handles count unless dropped');
  t.equal(comparableJson([{ metainfo: { version: '1.0.6' } }, rule(1, 'x', 8)], true), comparableJson([{ metainfo: { version: '1.0.9' } }, rule(2, 'y', 9)], true), 'dropped: handles and nft\'s version');
  const tcp = JSON.parse(a) as Array<{ rule: { expr: Array<{ match?: { right: unknown } }> } }>;
  t.equal(tcp[0]!.rule.expr[1]!.match!.right, 'tcp', 'the right side of any other match stays');
  t.not(comparableJson([rule(1, 'system.slice/docker.service', 7, 'other')]), a, 'a real difference shows');
});
