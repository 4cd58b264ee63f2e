import { configuredCapabilities } from '../../src/domain/capabilities.js';
import type { ContainerFacts } from '../../src/domain/facts.js';
import { DOCKER_MASKED_PATHS, DOCKER_READONLY_PATHS } from '../../src/domain/system-paths.js';

type Overrides = { -readonly [K in keyof ContainerFacts]?: ContainerFacts[K] };

/** Facts of a plain `docker run -d nginx:1.27` container (the image pulled from Docker Hub), with whatever a unit test changes. */
export function makeFacts(overrides: Overrides = {}): ContainerFacts {
  const caps = configuredCapabilities([], [], false);
  const facts: ContainerFacts = {
    id: 'c0ffee0000000000000000000000000000000000000000000000000000000000',
    name: 'web',
    image: { reference: 'nginx:1.27', id: 'sha256:0123', repoTags: ['nginx:1.27'], repoDigests: [`nginx@sha256:${'7'.repeat(64)}`] },
    labels: {},
    state: { running: true, status: 'running', pid: 4242, startedAt: '2026-11-24T08:00:00Z' },
    ports: [],
    networks: [{ name: 'bridge', networkId: 'n1', ipv4: '172.17.0.2', ipv6: '', mac: '02:42:ac:11:00:02' }],
    mounts: [],
    devices: [],
    capabilities: { added: [], dropped: [], configured: caps, effective: caps },
    privileged: false,
    hostNamespaces: { pid: false, net: false, ipc: false, uts: false, userns: false, cgroup: false },
    security: { seccomp: 'default', apparmor: 'docker-default', noNewPrivileges: false, labelOptions: [], seccompProfile: null },
    user: '',
    resources: { memory: 0, pidsLimit: 0, cpus: 0, cpuShares: 0 },
    restartPolicy: { name: 'no', maximumRetryCount: 0 },
    mountLabel: '',
    processLabel: '',
    execs: [],
    deviceCgroupRules: [],
    systemPaths: { masked: [...DOCKER_MASKED_PATHS], readOnly: [...DOCKER_READONLY_PATHS] },
    joinedNamespaces: [],
    processUids: null,
    execHiddenByLabel: false,
    processes: [],
    processesUnread: 0,
    rootFilesystem: { readOnly: false, judgedOn: 'mount table' },
    cgroupParent: '',
    ulimits: [],
    healthcheck: { command: null, disabled: false, image: false },
    mountPropagation: [],
    ...overrides,
  };
  // Its init as the one process, holding what the capability facts say, unless a test gives processes.
  const { configured, effective } = facts.capabilities;
  const init = { pid: facts.state.pid, comm: 'nginx', effective: effective ?? [], bounding: configured };
  return overrides.processes || !facts.state.running ? facts : { ...facts, processes: [init] };
}

/** What the process view adds to `toContainerFacts`' input, empty: for tests about the configuration. */
export const NO_PROCESSES = { execHiddenByLabel: false, processes: [], processesUnread: 0 } as const;
