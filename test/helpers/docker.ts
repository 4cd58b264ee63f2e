/**
 * The private test Docker daemon (README "Development"), started by `scripts/test-env.sh up`.
 * Everything here talks to that daemon only, never to the machine's own dockerd.
 */
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';

export const TEST_IMAGE = 'dw-test/busybox:1';
/** Label put on every container `runContainer` makes; `removeTestContainers` removes by it. */
export const TEST_LABEL = 'dw-test';

const DEFAULT_HOST = 'unix:///run/dw-test/docker.sock';

/** `DW_TEST_DOCKER_HOST` (`unix:///path` or a plain path), else the default socket of test-env.sh. */
export const DOCKER_HOST = process.env.DW_TEST_DOCKER_HOST || DEFAULT_HOST;
export const DOCKER_SOCKET = socketPathOf(DOCKER_HOST);

function socketPathOf(host: string): string {
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  throw new Error(`DW_TEST_DOCKER_HOST=${host}: only unix:///path sockets are supported`);
}

/** A dockerode client bound to the test daemon. */
export const docker = new Docker({ socketPath: DOCKER_SOCKET, timeout: 30_000 });

let ready: Promise<void> | undefined;

/** Resolves once the test daemon answers and has the test image; rejects with a hint otherwise. */
export function ensureTestDocker(): Promise<void> {
  ready ??= (async () => {
    try {
      await new Docker({ socketPath: DOCKER_SOCKET, timeout: 5_000 }).ping();
    } catch (err) {
      throw new Error(
        `test Docker daemon not reachable at ${DOCKER_HOST} (${(err as Error).message}); ` +
          'start it with: scripts/test-env.sh up',
      );
    }
    try {
      await docker.getImage(TEST_IMAGE).inspect();
    } catch {
      throw new Error(`test image ${TEST_IMAGE} missing on ${DOCKER_HOST}; run: scripts/test-env.sh up`);
    }
  })();
  ready.catch(() => (ready = undefined));
  return ready;
}

export interface RunOptions {
  /** Command; default: busybox httpd on :80 serving /var/www (daemonised), then `sleep` as PID 1. */
  readonly cmd?: string[];
  /** `[ip:]hostPort:containerPort[/proto]` or `containerPort[/proto]` (random host port). */
  readonly publish?: string[];
  readonly name?: string;
  readonly labels?: Record<string, string>;
  readonly env?: string[];
  readonly image?: string;
  /** `--user`; default: the image's. */
  readonly user?: string;
  /** Merged over the HostConfig built from `publish`. */
  readonly hostConfig?: Docker.HostConfig;
  /** Per-network settings at create (a fixed address: `{ EndpointsConfig: { net: { IPAMConfig: { IPv4Address } } } }`). */
  readonly networkingConfig?: Docker.ContainerCreateOptions['NetworkingConfig'];
}

export const DEFAULT_CMD = ['sh', '-c', 'httpd -p 80 -h /var/www && exec sleep 86400'];

let seq = 0;

/** Creates and starts a container labelled `dw-test=1` with a unique name; resolves with its id. */
export async function runContainer(opts: RunOptions = {}): Promise<string> {
  await ensureTestDocker();
  const exposed: Record<string, object> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const spec of opts.publish ?? []) {
    const [ports, proto = 'tcp'] = spec.split('/');
    const parts = ports!.split(':');
    const containerPort = parts.pop()!;
    const hostPort = parts.pop() ?? '';
    const hostIp = parts.join(':');
    const key = `${containerPort}/${proto}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: hostIp, HostPort: hostPort });
  }
  const name = opts.name ?? `dw-test-${process.pid}-${++seq}-${randomBytes(3).toString('hex')}`;
  const container = await docker.createContainer({
    name,
    Image: opts.image ?? TEST_IMAGE,
    Cmd: opts.cmd ?? DEFAULT_CMD,
    Env: opts.env,
    User: opts.user,
    Labels: { ...opts.labels, [TEST_LABEL]: '1', [`${TEST_LABEL}.pid`]: String(process.pid) },
    ExposedPorts: exposed,
    HostConfig: { PortBindings: bindings, ...opts.hostConfig },
    ...(opts.networkingConfig ? { NetworkingConfig: opts.networkingConfig } : {}),
  });
  try {
    await container.start();
  } catch (err) {
    await container.remove({ force: true }).catch(() => {});
    throw err;
  }
  return container.id;
}

/** Force-removes every container labelled `dw-test=1` (or `label`, `key=value`) on the test daemon. */
export async function removeTestContainers(label = `${TEST_LABEL}=1`): Promise<void> {
  await ensureTestDocker();
  const list = await docker.listContainers({ all: true, filters: { label: [label] } });
  await Promise.all(
    list.map(async (c) => {
      try {
        await docker.getContainer(c.Id).remove({ force: true, v: true });
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode;
        if (status !== 404 && status !== 409) throw err; // gone already, or removal in progress
      }
    }),
  );
}
