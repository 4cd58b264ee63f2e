/** Where syslog records go: `udp://host:port`, `tcp://host:port` (RFC 6587 octet counting), `unix:/dev/log`. */
export type SyslogTarget =
  | { readonly transport: 'udp' | 'tcp'; readonly host: string; readonly port: number }
  | { readonly transport: 'unix'; readonly path: string };

export function parseSyslogTarget(text: string): SyslogTarget | { readonly error: string } {
  const unix = /^unix:(\/.*)$/.exec(text);
  if (unix) return { transport: 'unix', path: unix[1]! };
  const net = /^(udp|tcp):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  const port = Number(net?.[3]);
  if (!net || port < 1 || port > 65535) return { error: 'must be udp://HOST:PORT, tcp://HOST:PORT or unix:/ABSOLUTE/PATH' };
  return { transport: net[1] as 'udp' | 'tcp', host: net[2]!.replace(/^\[|\]$/g, ''), port };
}
