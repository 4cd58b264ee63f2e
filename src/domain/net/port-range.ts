import type { Protocol } from '../facts.js';
import type { PortRange } from '../policy/model.js';

/** `PORT/PROTO` or `FROM-TO/PROTO`; the protocol is required, so a rule never silently covers tcp and udp at once. */
const PORT_SPEC = /^([1-9]\d{0,4})(?:-([1-9]\d{0,4}))?\/(tcp|udp|sctp)$/;
const MAX_PORT = 65535;

/** Parses `443/tcp`, `8000-8100/udp`, `53/sctp`: ports 1..65535, FROM <= TO, lower-case protocol. */
export function parsePortRange(text: string): PortRange | undefined {
  const match = PORT_SPEC.exec(text);
  if (!match) return undefined;
  const from = Number(match[1]);
  const to = match[2] === undefined ? from : Number(match[2]);
  if (to > MAX_PORT || from > to) return undefined;
  return { proto: match[3] as Protocol, from, to };
}
