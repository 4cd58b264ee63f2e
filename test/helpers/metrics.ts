import { get } from 'node:http';

/** `GET` the daemon's metrics (or another path) on its unix socket or a TCP address. */
export function scrape(listen: { socketPath: string } | { host: string; port: number }, path = '/metrics'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ ...listen, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** The value of one series (`name{labels}` exactly as served), or undefined when it is not served. */
export function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}
