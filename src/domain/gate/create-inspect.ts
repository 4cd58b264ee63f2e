import type { ContainerInspect } from '../../adapters/docker/facts.js';

/**
 * A `POST /containers/create` body, read as dockerd reads it (go-json.ts), turned into the shape of
 * `docker inspect` of the container it would create, so the gate's facts come from the same mapping
 * as every other path's (`toContainerFacts`). Pure: what needs the engine (the image, the volumes,
 * `--volumes-from` containers) is looked up first and handed in.
 */

/** What the engine knows that the body refers to. */
export interface CreateLookups {
  /** The image the reference resolves to; null when dockerd does not have it (it answers 404 then). */
  readonly image: { readonly Id: string; readonly Config?: { readonly User?: string | null; readonly Labels?: Readonly<Record<string, string>> | null } | null } | null;
  /** Existing volumes by name: where they live and how their driver mounts them. */
  readonly volume: (name: string) => VolumeInfo | null;
  /** Where the local driver puts a volume that does not exist yet: `<data root>/volumes/<name>/_data`. */
  readonly newVolumeMountpoint: (name: string) => string;
  /** Mounts of a container named in `VolumesFrom`; null when there is no such container. */
  readonly mountsOf: (container: string) => ContainerInspect['Mounts'] | null;
}

export interface VolumeInfo {
  readonly Driver: string;
  readonly Mountpoint: string;
}

type Mount = NonNullable<ContainerInspect['Mounts']>[number];

/** The fields of the Go-read body this mapping uses (everything else is carried in `HostConfig` as read). */
interface CreateBody {
  readonly Image?: unknown;
  readonly User?: unknown;
  readonly Labels?: unknown;
  readonly Healthcheck?: unknown;
  readonly Shell?: unknown;
  readonly HostConfig?: unknown;
}

export function createToInspect(body: CreateBody, name: string | null, lookups: CreateLookups): ContainerInspect {
  const host = (isRecord(body.HostConfig) ? body.HostConfig : {}) as Record<string, unknown>;
  const image = lookups.image;
  const imageLabels = image?.Config?.Labels ?? {};
  return {
    Id: '',
    Name: name ?? '',
    Image: image?.Id ?? '',
    State: { Status: 'created', Running: false, Pid: 0, StartedAt: '' },
    Config: {
      Image: text(body.Image),
      // dockerd merges the image's USER and labels into the container's, as inspect shows them.
      User: text(body.User) || (image?.Config?.User ?? ''),
      Labels: { ...imageLabels, ...stringMap(body.Labels) },
      // Not merged with the image's here: facts fall back to the image's healthcheck when there is none.
      Healthcheck: isRecord(body.Healthcheck) ? { Test: stringList(body.Healthcheck.Test) } : null,
      Shell: stringList(body.Shell),
    },
    HostConfig: host as ContainerInspect['HostConfig'],
    NetworkSettings: { Ports: publishedPorts(host.PortBindings) },
    Mounts: [
      ...stringList(host.Binds).flatMap((spec) => bindSpecMount(spec, text(host.VolumeDriver), lookups)),
      ...(Array.isArray(host.Mounts) ? host.Mounts : []).flatMap((m: unknown) => (isRecord(m) ? apiMount(m, lookups) : [])),
      ...stringList(host.VolumesFrom).flatMap((spec) => volumesFrom(spec, lookups)),
    ],
    ExecIDs: [],
  };
}

/** What the body names that only the engine can say more about: named volumes, `--volumes-from` containers. */
export function referencedBy(body: CreateBody): { readonly volumes: string[]; readonly containers: string[] } {
  const host = (isRecord(body.HostConfig) ? body.HostConfig : {}) as Record<string, unknown>;
  const volumes = new Set<string>();
  for (const spec of stringList(host.Binds)) {
    const bind = parseBindSpec(spec);
    if (bind && !bind.source.startsWith('/')) volumes.add(bind.source);
  }
  for (const m of Array.isArray(host.Mounts) ? host.Mounts : []) {
    if (isRecord(m) && m.Type === 'volume' && text(m.Source) !== '') volumes.add(text(m.Source));
  }
  return { volumes: [...volumes], containers: stringList(host.VolumesFrom).map((spec) => spec.split(':')[0]!) };
}

/** `-v SRC:DST[:MODE]` as moby's Linux parser splits it; null for `-v DST` (anonymous) and what dockerd refuses. */
function parseBindSpec(spec: string): { readonly source: string; readonly destination: string; readonly mode: string } | null {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || parts[0] === '') return null;
  const [source, destination, mode = ''] = parts as [string, string, string?];
  return { source, destination, mode };
}

function bindSpecMount(spec: string, volumeDriver: string, lookups: CreateLookups): Mount[] {
  const bind = parseBindSpec(spec);
  if (bind === null) return [];
  const { source, destination, mode } = bind;
  const rw = !mode.split(',').includes('ro');
  if (source.startsWith('/')) return [{ Type: 'bind', Source: source, Destination: destination, Mode: mode, RW: rw }];
  return [volumeMount(source, destination, rw, mode, volumeDriver || 'local', null, lookups)];
}

/** `--mount type=…,source=…,target=…` as the API carries it. */
function apiMount(m: Record<string, unknown>, lookups: CreateLookups): Mount[] {
  const type = text(m.Type);
  const source = text(m.Source);
  const destination = text(m.Target);
  const rw = m.ReadOnly !== true;
  const propagation = isRecord(m.BindOptions) ? text(m.BindOptions.Propagation) : '';
  if (type === 'bind') return [{ Type: 'bind', Source: source, Destination: destination, Mode: '', RW: rw, Propagation: propagation }];
  if (type !== 'volume' || source === '') return []; // tmpfs, anonymous volumes: no host path chosen by the request
  const driver = isRecord(m.VolumeOptions) && isRecord(m.VolumeOptions.DriverConfig) ? m.VolumeOptions.DriverConfig : {};
  return [volumeMount(source, destination, rw, '', text(driver.Name) || 'local', stringMap(driver.Options), lookups)];
}

/**
 * A named volume: an existing one is what the engine says it is (its driver options included; a
 * request's options do not change an existing volume); a new one is created with the request's.
 */
function volumeMount(
  name: string, destination: string, rw: boolean, mode: string, driver: string,
  options: Readonly<Record<string, string>> | null, lookups: CreateLookups,
): Mount {
  const existing = lookups.volume(name);
  return {
    Type: 'volume',
    Name: name,
    Source: existing?.Mountpoint ?? lookups.newVolumeMountpoint(name),
    Destination: destination,
    Driver: existing?.Driver ?? driver,
    Mode: mode,
    RW: rw,
    // An existing volume's options are read from the engine with the facts; a new one's are the request's.
    ...(existing === null && options !== null && { Options: options }),
  };
}

/** `--volumes-from C[:ro|:rw]`: every mount of C, read-only when asked. */
function volumesFrom(spec: string, lookups: CreateLookups): Mount[] {
  const [container = '', mode = ''] = spec.split(':');
  return (lookups.mountsOf(container) ?? []).map((m) => ({ ...m, RW: mode === 'ro' ? false : m.RW }));
}

function publishedPorts(bindings: unknown): NonNullable<ContainerInspect['NetworkSettings']['Ports']> {
  const ports: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  if (!isRecord(bindings)) return ports;
  for (const [key, list] of Object.entries(bindings)) {
    if (!Array.isArray(list)) continue;
    ports[key] = list.filter(isRecord).map((b) => ({ HostIp: text(b.HostIp), HostPort: text(b.HostPort) }));
  }
  return ports;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const text = (value: unknown): string => (typeof value === 'string' ? value : '');
const stringList = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);

function stringMap(value: unknown): Record<string, string> {
  const result: Record<string, string> = Object.create(null);
  if (isRecord(value)) for (const [key, item] of Object.entries(value)) if (typeof item === 'string') result[key] = item;
  return result;
}

/**
 * `POST /volumes/create` as a container that only mounts the new volume: its driver options (a bind
 * of any host path, a block device, a network filesystem) are judged as the mount they become.
 */
export function volumeInspect(body: { readonly Name?: unknown; readonly Driver?: unknown; readonly DriverOpts?: unknown }, dataRoot: string): ContainerInspect {
  // dockerd names an unnamed volume itself; the placeholder only carries the options to the judgement.
  const name = text(body.Name) || '(new volume)';
  return {
    Id: '',
    Name: '',
    Image: '',
    State: { Status: 'created', Running: false, Pid: 0, StartedAt: '' },
    Config: { Image: '', User: '', Labels: {} },
    HostConfig: {},
    NetworkSettings: { Ports: {} },
    Mounts: [
      {
        Type: 'volume',
        Name: name,
        Source: `${dataRoot}/volumes/${name}/_data`,
        Destination: '/volume',
        Driver: text(body.Driver) || 'local',
        Mode: '',
        RW: true,
        Options: stringMap(body.DriverOpts),
      },
    ],
    ExecIDs: [],
  };
}
