import t from 'tap';
import { CAPABILITIES, decodeCapabilityMask, DOCKER_DEFAULT_CAPABILITIES } from '../../src/domain/capabilities.js';

const sorted = <T>(items: readonly T[]) => [...items].sort();

t.test('a status mask decodes to the capabilities of its bits, in name order', async (t) => {
  t.strictSame(decodeCapabilityMask('0000000000000000'), []);
  t.strictSame(decodeCapabilityMask('00000000a80425fb'), sorted(DOCKER_DEFAULT_CAPABILITIES), "docker run's defaults");
  t.strictSame(decodeCapabilityMask('000001ffffffffff'), sorted(CAPABILITIES), 'every known capability');
  t.strictSame(decodeCapabilityMask('ffffffffffffffff'), sorted(CAPABILITIES), 'bits past the last known one are ignored');
  t.strictSame(decodeCapabilityMask('1'), ['CAP_CHOWN'], 'short masks count from bit 0');
  t.strictSame(decodeCapabilityMask('80000000'), ['CAP_SETFCAP'], 'bit 31, the top of the low half');
  t.strictSame(decodeCapabilityMask('100000000'), ['CAP_MAC_OVERRIDE'], 'bit 32, the first of the high half');
  t.strictSame(decodeCapabilityMask('0000014000200000'), ['CAP_CHECKPOINT_RESTORE', 'CAP_PERFMON', 'CAP_SYS_ADMIN'], 'bits on both halves');
});

t.test('every single bit decodes to its own capability', async (t) => {
  CAPABILITIES.forEach((cap, bit) => t.strictSame(decodeCapabilityMask((2n ** BigInt(bit)).toString(16)), [cap], cap));
});

t.test('what is not a 64-bit hex mask is refused', async (t) => {
  for (const bad of ['', 'xyz', '0x1f', '00000000000000000', '-1']) t.throws(() => decodeCapabilityMask(bad), /not a capability mask/, JSON.stringify(bad));
});

t.test('masks decoded before are answered again as decoded, beyond the number kept', async (t) => {
  const masks = Array.from({ length: 600 }, (_, i) => (0xa80425fb + i * 0x1000000).toString(16));
  const first = masks.map(decodeCapabilityMask);
  t.ok(Object.isFrozen(first[0]), 'an answer shared between callers cannot be changed by one');
  masks.forEach((mask, i) => t.strictSame(decodeCapabilityMask(mask), first[i], mask));
  t.strictSame(decodeCapabilityMask('1'), ['CAP_CHOWN']);
});
