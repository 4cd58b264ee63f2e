import { list, map, struct, type Shape } from './go-json.js';

/**
 * The Docker API request bodies the gate judges, as Go structs (moby api/types, 20.10 and later):
 * field names as their JSON names, which are also the names `docker inspect` shows. Fields the
 * checks do not read are still listed where they are part of a struct the gate reads, so reading
 * stays exact as checks are added.
 */

const RESOURCES: Readonly<Record<string, Shape>> = {
  CpuShares: 'value', Memory: 'value', NanoCpus: 'value', CgroupParent: 'value', BlkioWeight: 'value',
  BlkioWeightDevice: 'value', BlkioDeviceReadBps: 'value', BlkioDeviceWriteBps: 'value', BlkioDeviceReadIOps: 'value',
  BlkioDeviceWriteIOps: 'value', CpuPeriod: 'value', CpuQuota: 'value', CpuRealtimePeriod: 'value', CpuRealtimeRuntime: 'value',
  CpusetCpus: 'value', CpusetMems: 'value',
  Devices: list(struct({ PathOnHost: 'value', PathInContainer: 'value', CgroupPermissions: 'value' })),
  DeviceCgroupRules: 'value', DeviceRequests: 'value', KernelMemory: 'value', KernelMemoryTCP: 'value',
  MemoryReservation: 'value', MemorySwap: 'value', MemorySwappiness: 'value', OomKillDisable: 'value', PidsLimit: 'value',
  Ulimits: list(struct({ Name: 'value', Soft: 'value', Hard: 'value' })),
  CpuCount: 'value', CpuPercent: 'value', IOMaximumIOps: 'value', IOMaximumBandwidth: 'value',
};

const MOUNT = struct({
  Type: 'value', Source: 'value', Target: 'value', ReadOnly: 'value', Consistency: 'value',
  BindOptions: struct({ Propagation: 'value', NonRecursive: 'value' }),
  VolumeOptions: struct({ NoCopy: 'value', Labels: map('value'), DriverConfig: struct({ Name: 'value', Options: map('value') }) }),
  TmpfsOptions: struct({ SizeBytes: 'value', Mode: 'value' }),
});

const RESTART_POLICY = struct({ Name: 'value', MaximumRetryCount: 'value' });

export const HOST_CONFIG = struct({
  Binds: 'value', ContainerIDFile: 'value', LogConfig: struct({ Type: 'value', Config: map('value') }), NetworkMode: 'value',
  PortBindings: map(list(struct({ HostIp: 'value', HostPort: 'value' }))), RestartPolicy: RESTART_POLICY, AutoRemove: 'value',
  VolumeDriver: 'value', VolumesFrom: 'value', CapAdd: 'strslice', CapDrop: 'strslice', CgroupnsMode: 'value', Dns: 'value',
  DnsOptions: 'value', DnsSearch: 'value', ExtraHosts: 'value', GroupAdd: 'value', IpcMode: 'value', Cgroup: 'value',
  Links: 'value', OomScoreAdj: 'value', PidMode: 'value', Privileged: 'value', PublishAllPorts: 'value', ReadonlyRootfs: 'value',
  SecurityOpt: 'value', StorageOpt: map('value'), Tmpfs: map('value'), UTSMode: 'value', UsernsMode: 'value', ShmSize: 'value',
  Sysctls: map('value'), Runtime: 'value', ConsoleSize: 'value', Isolation: 'value', ...RESOURCES, Mounts: list(MOUNT),
  MaskedPaths: 'value', ReadonlyPaths: 'value', Init: 'value',
});

/** `POST /containers/create`: container.Config with HostConfig and NetworkingConfig beside it. */
export const CREATE_BODY = struct({
  Hostname: 'value', Domainname: 'value', User: 'value', AttachStdin: 'value', AttachStdout: 'value', AttachStderr: 'value',
  ExposedPorts: map('value'), Tty: 'value', OpenStdin: 'value', StdinOnce: 'value', Env: 'value', Cmd: 'strslice',
  Healthcheck: struct({ Test: 'value', Interval: 'value', Timeout: 'value', StartPeriod: 'value', Retries: 'value' }),
  ArgsEscaped: 'value', Image: 'value', Volumes: map('value'), WorkingDir: 'value', Entrypoint: 'strslice',
  NetworkDisabled: 'value', MacAddress: 'value', OnBuild: 'value', Labels: map('value'), StopSignal: 'value',
  StopTimeout: 'value', Shell: 'strslice', HostConfig: HOST_CONFIG, NetworkingConfig: 'value',
});

/** `POST /containers/{id}/update`: Resources and RestartPolicy. */
export const UPDATE_BODY = struct({ ...RESOURCES, RestartPolicy: RESTART_POLICY });

/** `POST /containers/{id}/exec`. */
export const EXEC_BODY = struct({
  User: 'value', Privileged: 'value', Tty: 'value', AttachStdin: 'value', AttachStderr: 'value', AttachStdout: 'value',
  Detach: 'value', DetachKeys: 'value', Env: 'value', WorkingDir: 'value', Cmd: 'strslice',
});

/** `POST /volumes/create`. */
export const VOLUME_CREATE_BODY = struct({ Name: 'value', Driver: 'value', DriverOpts: map('value'), Labels: map('value') });
