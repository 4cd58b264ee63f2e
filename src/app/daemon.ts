import { hostname } from 'node:os';
import type { FirewallBackend } from '../adapters/firewall/backend.js';
import { connectEngine } from '../adapters/docker/engine.js';
import { engineSockets, withEngineSocket } from './engine-sockets.js';
import { execRecorder } from './exec-record.js';
import { signatureVerifier, withSignatureVerdicts } from './signature-verdicts.js';
import { selectBackend } from '../adapters/firewall/select.js';
import { parseMetricsListen, serveMetrics } from '../adapters/metrics-server.js';
import { createNotifier } from '../adapters/sd-notify.js';
import { releaseFreedMemory } from '../adapters/heap.js';
import { holdOptimisingCompiler } from '../adapters/tiering.js';
import { bridgeOptions } from '../domain/firewall/bridge-options.js';
import type { Policy } from '../domain/policy/model.js';
import { formatPolicyError, type PolicyResult } from '../domain/policy/result.js';
import { actionEnforcer } from './action-enforcer.js';
import { alertEnforcer } from './alerts/alert-enforcer.js';
import type { Alerter } from './alerts/alerter.js';
import { createAlerter } from './alerts/create-alerter.js';
import { bridgeFilterHere, bridgeIsolation, SPOOFING_CHECK_MS } from './bridge-setup.js';
import type { Config } from './config.js';
import { FirewallEnforcer } from './firewall-enforcer.js';
import { FirewallStateFile, readFirewallState, startOptions } from './firewall-state.js';
import { KeyedQueue } from './keyed-queue.js';
import { logEnforcer } from './log-enforcer.js';
import { policyFileVersion, readPolicyOffLoop } from './policy-reader.js';
import type { Logger } from './logger.js';
import { DaemonMetrics } from './metrics.js';
import { Reconciler, type Enforcer } from './reconciler.js';
import type { BridgeEnforcer } from './bridge-enforcer.js';
import type { RelabelHostReader } from './relabel-host.js';
import type { startGate } from './gate/gate-setup.js';
import { relabelHostFor, relabelSetting, volumesEnforcer } from './volumes-setup.js';
import { hostFactsReader } from './host-facts.js';
import { bridgeVeths } from '../adapters/netns/bridge-veths.js';
import { primeCgroupMounts } from '../adapters/docker/container-processes.js';
import { Watcher } from './watcher.js';
import { ReconcileLoop } from './reconcile-loop.js';
import { PolicyReloader } from './policy-reloader.js';
import { watchPolicyFile, type PolicyFileWatch } from './policy-file-watch.js';
import { ProgressWatchdog } from './watchdog.js';
import { containerRef } from '../domain/facts.js';
import { observedAlert } from '../domain/alerts/catalogue.js';
import { BRIDGE_TABLE } from '../adapters/nftables/bridge-render.js';
import type { TableEventWatch } from '../adapters/nftables/table-events.js';
import { watchOwnTables } from './table-watch.js';
import { dockerProxyReader } from '../adapters/proc/docker-proxy.js';
import { readEngineCgroup } from '../adapters/proc/engine-cgroup.js';
import { NftSession } from '../adapters/nftables/nft-session.js';
import { GUARD_TABLE } from '../adapters/nftables/render.js';

/** Containers judged at once; each is a handful of short API calls. */
const CONCURRENCY = 8;
/** Pending tasks before events are dropped in favour of a full reconcile. */
const QUEUE_CAPACITY = 10_000;
/** A task still running after this long means something is wedged: stop feeding the watchdog. */
const STUCK_AFTER_MS = 60_000;
/** SIGTERM waits this long for queued work before exiting anyway. */
const DRAIN_MS = 10_000;
const RELOAD_DEBOUNCE_MS = 200;
/** A failed stop or kill is tried three times in about a second, then reported; the next sync tries again. */
const ACTION_RETRY_DELAYS_MS = [200, 800];
/** SIGTERM then waits this long for alert sinks; what is left stays queued on disk for the next start. */
const ALERT_FLUSH_MS = 5_000;

export interface DaemonHandle {
  /** Resolves with the exit code once the daemon has shut down. */
  readonly exited: Promise<number>;
  reload(): Promise<void>;
  shutdown(): Promise<void>;
}

const notStarted = (code: number): DaemonHandle => ({ exited: Promise.resolve(code), reload: async () => {}, shutdown: async () => {} });

/**
 * The lifecycle (docs/architecture.md "Lifecycle"): policy → fail-closed firewall baseline → connect, subscribe,
 * reconcile, apply → READY; then events, periodic reconciles and drift checks, reloads, watchdog
 * pings; SIGTERM → drain → STOPPING → exit 0, firewall left in place. An invalid policy at start-up
 * is fatal (exit 1), so is a firewall that cannot be installed (exit 2); an invalid policy at reload
 * is logged and the old one stays. `initialPolicy`: its read, begun by the caller (src/cli/main.ts: in a
 * worker thread, while this module and the rest of the daemon's load).
 */
export async function startDaemon(config: Config, log: Logger, initialPolicy: Promise<PolicyResult>, env: NodeJS.ProcessEnv = process.env): Promise<DaemonHandle> {
  // Until the first reconcile has settled (src/adapters/tiering.ts).
  const tiering = holdOptimisingCompiler();
  /** The firewall, once the policy is known: the guard's process may end before, when it owns nothing yet. */
  let guarded: FirewallEnforcer | null = null;
  // The guard (README "Published ports" › The guard): with nftables every write goes through one
  // `nft -i`, which owns a copy of our table that `nft flush ruleset` cannot take. It goes with that
  // process; built again at once from what is desired when the process ends while we run (before the
  // firewall exists it owns nothing yet).
  const guard = new NftSession({
    started: (pid) => log.info({ guard: { pid, table: GUARD_TABLE } }, 'nft guard started'),
    ended: (code, signal) => {
      log.warn({ guard: { code, signal, table: GUARD_TABLE } }, 'nft guard ended');
      guarded?.repairNow().catch((error: unknown) => log.error({ err: error }, 'firewall drift check failed'));
    },
  });
  // What the policy does not decide is asked of the host while the worker still validates the policy,
  // which the daemon's thread would otherwise wait for idle (issue #15, recovery after SIGKILL): the
  // firewall's backend, its guard's process, whether a ruleset of ours is installed, SELinux, whether
  // the kernel takes the bridge table. Reads only: nothing is written before the policy is known.
  const guardRefused = (error: unknown): void => log.error({ err: error, guard: { table: GUARD_TABLE } }, 'the firewall guard could not be written; our table was, alone');
  const engineCgroupGone = (error: unknown): void => log.warn({ err: error }, 'dockerd\'s cgroup is gone: the firewall was written without the rule that closes docker-proxy\'s ports not judged; it comes back when dockerd does');
  const firewallFound = selectBackend(config.firewall.backend, { guard, guardRefused, engineCgroupGone }).then((backend) => {
    // Its process started now, beside the read of what is installed: the start-up reconcile's replace,
    // the first write over a ruleset already installed, then does not wait for nft to start.
    if (backend.name === 'nftables') guard.start();
    return { backend, installed: backend.installed() };
  });
  const bridgeFilter = bridgeFilterHere(log);
  const relabelling = relabelSetting(config);
  // Each is awaited below, or given up with the start: never an unhandled rejection meanwhile.
  const probes = [firewallFound.then(({ installed }) => installed), bridgeFilter, relabelling];
  for (const probe of probes) probe.catch(() => {});
  const giveUp = async (code: number): Promise<DaemonHandle> => {
    await Promise.allSettled(probes); // nothing of it goes on after the daemon gave up
    guard.close();
    return notStarted(code);
  };

  const initial = await initialPolicy;
  if (!initial.ok) {
    log.fatal({ errors: initial.errors.map(formatPolicyError) }, 'policy invalid; not starting');
    return giveUp(1);
  }
  let policy: Policy = withEngineSocket(config, initial.policy);
  log.info({ policy: { file: policy.file, hash: policy.hash, mode: policy.mode } }, 'policy loaded');

  let alerter: Alerter;
  try {
    const host = hostname();
    alerter = createAlerter(config.alerts, config.state.dir, log, () => ({ host, mode: policy.mode, policyHash: policy.hash }));
  } catch (error) {
    log.fatal({ err: error }, 'cannot set up alert sinks; not starting');
    return giveUp(2);
  }

  const denyByDefault = (p: Policy): boolean => p.ports.default === 'deny';
  // Read at scrape time; the reconciler and the queue exist by the time anything scrapes.
  const metrics = new DaemonMetrics({
    tracked: () => reconciler.tracked,
    queue: () => queue,
    alertSinks: () => alerter.sinks,
    alertsRaised: () => alerter.raised,
    daemon: () => ({ ready, dockerUp: !dockerDown }),
  });
  let firewall: FirewallEnforcer;
  let firewallTables: FirewallBackend['nfTables'] = { tables: [], shared: false };
  /** nftables: ports not judged are closed by dockerd's cgroup too (iptables' cgroup match sees too few sockets). */
  let matchesCgroups = false;
  /** docker-proxy's listeners, which a drift repair closes until judged (primed once the start-up reconcile is done). */
  const dockerProxies = dockerProxyReader(config.docker.socket);
  const notifier = createNotifier(env, (error) => log.warn({ err: error }, 'sd_notify failed'));
  const engine = connectEngine({ socketPath: config.docker.socket, timeoutMs: config.docker.timeoutMs, sockets: () => engineSockets(config, policy) });
  // Every path that judges a container (sync, gate) reads its facts with the image's signature verdicts.
  const docker = withSignatureVerdicts(engine, signatureVerifier({ stateDir: config.state.dir }), () => policy);
  // The rest of the set-up before Docker is connected does not depend on the firewall's baseline (its own
  // table, files and probes): begun beside it, start-up waits for the slower of the two, not for both in
  // turn (issue #15, recovery after SIGKILL). Nothing is judged before both are done.
  // Read once, here, off the start-up reconcile's path (never rejects: unreadable is none found, read again when needed).
  void primeCgroupMounts();
  const setup: Promise<[{ relabelHost: RelabelHostReader | null; volumes: Enforcer }, BridgeEnforcer | null]> = Promise.all([
    relabelHostFor(config, docker, log, relabelling).then(async (relabelHost) => ({ relabelHost, volumes: await volumesEnforcer(config, log, relabelHost !== null) })),
    bridgeFilter.then(async (filter) => {
      if (filter === null) return null;
      const bridge = bridgeIsolation(filter, log, alerter, metrics);
      await bridge.configure({ audit: policy.mode === 'audit' });
      await bridge.lookForEarlierTable().catch(() => {}); // failed: the first flush looks again
      return bridge;
    }),
  ]);
  try {
    const found = await firewallFound;
    const backend = metrics.measured(found.backend);
    firewallTables = backend.nfTables;
    matchesCgroups = backend.name === 'nftables';
    const saved = readFirewallState(config.state.dir);
    firewall = new FirewallEnforcer(
      backend,
      log,
      { ...startOptions(saved, denyByDefault(policy), config.firewall.otherBridges), audit: policy.mode === 'audit' },
      new FirewallStateFile(config.state.dir),
      (drift) => alerter.raise(observedAlert('daemon.firewall-drift-repaired', 'firewall drift repaired', { details: { backend: backend.name, drift } })),
      (container, { connections, source, hostAddress, proto, port }) =>
        alerter.raise(observedAlert('ports', `would have dropped ${connections} connections from ${source} to published port ${port}/${proto}`, {
          container,
          details: { connections, source, hostAddress, hostPort: port, proto },
        })),
      () => dockerProxies.read(),
    );
    guarded = firewall;
    if (await firewall.baseline(saved?.ports, found.installed)) log.info({ firewall: { backend: backend.name } }, 'fail-closed firewall baseline installed');
    else log.info({ firewall: { backend: backend.name } }, 'firewall ruleset already installed; kept until the start-up reconcile replaces it');
  } catch (error) {
    log.fatal({ err: error }, 'cannot install the firewall; not starting');
    await setup.catch(() => {}); // nothing of it goes on after the daemon gave up
    alerter.close();
    return giveUp(2);
  }
  const queue = new KeyedQueue({
    concurrency: CONCURRENCY,
    capacity: QUEUE_CAPACITY,
    onError: (container, kind, error) => log.error({ container: { id: container }, task: kind, err: error }, 'container task failed'),
    onOverflow: () => {
      if (!reconciles.wanted) log.warn({ queue: queue.counters }, 'event queue full; events dropped, full reconcile scheduled');
      reconciles.requestSoon();
    },
  });
  const actions = actionEnforcer(docker, log, {
    retryDelaysMs: ACTION_RETRY_DELAYS_MS,
    onOutcome: (o) => {
      metrics.containerAction(o.action, o.error === null ? 'done' : 'failed');
      if (o.error === null) return;
      alerter.raise(observedAlert(`daemon.${o.action}-failed`, `${o.action} failed; retried at the next sync`, {
        container: containerRef(o.facts),
        details: { error: String(o.error), violations: o.violations.map((v) => v.check) },
      }));
    },
  });
  const [{ relabelHost, volumes }, bridge] = await setup;
  let gate: Awaited<ReturnType<typeof startGate>>;
  try {
    // The gate's modules load only when it is on.
    gate = config.gate.enabled ? await (await import('./gate/gate-setup.js')).startGate(config.gate, docker, () => policy, (id) => reconciler.syncNow(id), alerter, log, env, metrics) : null;
  } catch (error) {
    // dockerd configured for the plugin refuses every request while it is not served: let systemd restart us.
    log.fatal({ err: error, gate: { socket: config.gate.socket } }, 'cannot serve the authorization gate; not starting');
    alerter.close();
    return giveUp(2);
  }
  const hostFacts = hostFactsReader({ relabel: relabelHost, veths: bridge ? bridgeVeths : null });
  const enforcers = [logEnforcer(log), firewall, ...(bridge ? [bridge] : []), actions, volumes, alertEnforcer((input) => alerter.raise(input)), execRecorder(config.state.dir)];
  const reconciler = new Reconciler(docker, queue, enforcers, () => policy, hostFacts);

  let ready = false;
  let stopping = false;
  const announceReady = (status: string): void => {
    if (!ready) notifier.ready(status);
    else notifier.status(status);
    ready = true;
  };
  const statusLine = (): string => `watching ${reconciler.tracked.size} containers; policy ${policy.hash.slice(0, 12)} (${policy.mode})`;

  // Docker's bridges, read afresh one read at a time: a reconcile and a network event never apply an older list over a newer one.
  let bridgesRead: Promise<void> = Promise.resolve();
  const configureBridges = (): Promise<void> =>
    (bridgesRead = bridgesRead.catch(() => {}).then(async () => firewall.configure(bridgeOptions(await docker.listBridges(), policy.network.exceptions))));

  // dockerd's cgroup (README "Published ports" › The guard), read at every reconcile (start-up, reconnect,
  // periodic): dockerd restarted by systemd is in a cgroup made again, whose new id nft must load, and a
  // listener dockerd opened since (`docker swarm init`) makes it unusable. Said when it changes.
  let engineCgroupSaid = '';
  const configureEngineCgroup = async (): Promise<void> => {
    if (!matchesCgroups) return;
    const pid = await dockerProxies.engine();
    const read = pid === null ? { none: 'no dockerd in this network namespace holds the engine socket' } : readEngineCgroup(pid);
    const said = JSON.stringify(read);
    if (said !== engineCgroupSaid) {
      if ('cgroup' in read) log.info({ firewall: { engineCgroup: read.cgroup } }, 'docker-proxy\'s ports not judged are closed by dockerd\'s cgroup');
      // A warning only where the rule would be used (ports.default: deny); otherwise it is for the record.
      else log[denyByDefault(policy) ? 'warn' : 'info']({ firewall: { engineCgroup: null, reason: read.none } }, 'dockerd\'s cgroup not usable: docker-proxy\'s ports not judged are closed only once the drift repair has read them');
      engineCgroupSaid = said;
    }
    await firewall.configure({ engineCgroup: 'cgroup' in read ? read.cgroup : undefined });
  };

  const reconciles = new ReconcileLoop(
    () =>
      metrics.reconcile(async () => {
        // Docker's networks, its containers and dockerd's cgroup (procfs) are read side by side; none of them
        // writes the kernel before the start-up reconcile's end (the ruleset found or put in stays until
        // `reconciled`), and after it the queue (KernelSync) orders their writes, as it does for events.
        await settledAll([configureBridges(), reconciler.reconcile(), configureEngineCgroup()]);
        // Two tables, each with its own writer and reads (KernelSync): side by side, so the reconcile waits
        // for the slower one's write and drift check, not for both in turn (~0.1 s at 1,000 containers).
        // No drift check right after a start-up's atomic replace of a whole table (the firewall's
        // ruleset, an earlier run's bridge table): it could only find what someone changed in the
        // milliseconds since, which the table watch (started as this reconcile settles) and the
        // periodic check find as at any other moment; it would hold READY back by `nft -j list` runs
        // (issue #15, recovery after SIGKILL). A table written as the containers were judged is checked.
        await Promise.all([
          firewall.reconciled().then((replaced) => (replaced ? null : firewall.repairDrift())),
          bridge?.reconciled().then((replaced) => (replaced ? null : bridge.repairDrift())),
        ]);
      }),
    {
      done: (reason, ms) => log.info({ reason, containers: reconciler.tracked.size, ms }, 'reconciled'),
      failed: (reason, error) => log.error({ reason, err: error }, 'reconcile failed'),
      settled: () => {
        announceReady(statusLine());
        // From the first reconcile's end on: before it, the ruleset found at start-up is kept as it is and the
        // bridge table of an earlier run is adopted, not replaced.
        if (tableWatch === undefined) {
          dockerProxies.prime();
          tableWatch = watchOwnTables([
            ...(firewallTables.tables.length === 0 ? [] : [{ ...firewallTables, check: () => firewall.repairDrift(), repair: () => firewall.repairNow(), failure: 'firewall drift check failed' }]),
            ...(bridge ? [{ tables: [BRIDGE_TABLE], shared: false, check: () => bridge.repairDrift(), repair: () => bridge.repairNow(), failure: 'bridge isolation drift check failed' }] : []),
          ], log);
        }
        // A reconcile (and the reload before it) is the daemon's busiest moment: without this, an idle
        // daemon would keep its high-water mark resident (README scale, idle RSS). Last, after the first
        // one's reading of every process for docker-proxy's listeners too.
        releaseFreedMemory();
        tiering.release();
      },
    },
  );
  /** Deletions of our nftables objects, heard from the kernel; undefined until the first reconcile ends, null if unavailable. */
  let tableWatch: TableEventWatch | null | undefined;
  const reconcile = (reason: string): Promise<void> => reconciles.request(reason);

  let dockerDown = false; // one alert per outage, however many retries
  const watcher = new Watcher(
    docker,
    {
      onEvent: (event) => {
        metrics.dockerEvent(event.action);
        log.debug({ event: { action: event.action, id: event.id } }, 'docker event');
        if (event.type === 'image') gate?.images.imagesMayHaveChanged();
        if (event.type === 'network' && (event.action === 'create' || event.action === 'destroy')) {
          configureBridges().catch((error: unknown) => log.error({ err: error }, 'reading Docker networks failed'));
        }
        reconciler.handleEvent(event);
      },
      onConnected: (reconnect) => {
        log.info({ socket: config.docker.socket }, reconnect ? 'reconnected to Docker' : 'connected to Docker');
        if (dockerDown) alerter.raise(observedAlert('daemon.docker-back', 'Docker reachable again', { details: { socket: config.docker.socket } }));
        dockerDown = false;
        gate?.images.watching(true);
        void reconcile(reconnect ? 'reconnect' : 'start-up');
      },
      onDisconnected: (error, retryInMs) => {
        log.warn({ err: error, retryInMs }, 'Docker unreachable; rules stay in place');
        if (!dockerDown) alerter.raise(observedAlert('daemon.docker-unreachable', 'Docker unreachable; rules stay in place', { details: { socket: config.docker.socket, error: error.message } }));
        dockerDown = true;
        gate?.images.watching(false);
        // Never hold systemd's start-up hostage to Docker: READY with a status that says what is wrong.
        announceReady(`Docker unreachable (${error.message}); retrying in ${Math.round(retryInMs / 1000)} s`);
      },
      // The skipped line may have been any container's start (labels are copied into every event, so
      // a container can make its own lines too long): look at everything now, not at the next period.
      onBadLine: (reason) => {
        log.warn({ reason, reconcile: 'now' }, 'Docker event skipped');
        gate?.images.imagesMayHaveChanged();
        void reconcile('event skipped');
      },
    },
    { backoffMs: { initial: 500, max: 30_000 }, replayOverlapMs: 1_000 },
  );

  const reloader = new PolicyReloader({
    read: () => {
      log.debug({ policy: { file: config.policy.file } }, 'reading the policy for a reload');
      return readPolicyOffLoop(config.policy.file);
    },
    currentHash: () => policy.hash,
    fileVersion: () => policyFileVersion(config.policy.file),
    debounceMs: RELOAD_DEBOUNCE_MS,
    rejected: (result, fresh) => {
      const errors = result.errors.map(formatPolicyError);
      log.error({ errors }, 'policy reload rejected; the last good policy stays in force');
      if (fresh) alerter.raise(observedAlert('daemon.policy-reload-rejected', 'policy reload rejected; the last good policy stays in force', { details: { file: config.policy.file, errors } }));
    },
    accepted: async (next) => {
      policy = withEngineSocket(config, next.policy);
      log.info({ policy: { file: policy.file, hash: policy.hash, mode: policy.mode } }, 'policy reloaded');
      await firewall.configure({ defaultDeny: denyByDefault(policy), audit: policy.mode === 'audit' });
      await bridge?.configure({ audit: policy.mode === 'audit' });
      await reconcile('policy reload');
    },
  });
  const reload = (): Promise<void> => reloader.reload();

  const timers: NodeJS.Timeout[] = [];
  timers.push(setInterval(() => void reconcile('periodic'), config.reconcile.intervalSeconds * 1000).unref());
  timers.push(setInterval(() => reconciles.tick(), 1000).unref());
  timers.push(
    setInterval(() => {
      if (reconciles.busy) return;
      firewall.repairDrift().catch((error: unknown) => log.error({ err: error }, 'firewall drift check failed'));
      bridge?.repairDrift().catch((error: unknown) => log.error({ err: error }, 'bridge isolation drift check failed'));
      firewall.checkAudit().catch((error: unknown) => log.error({ err: error }, 'reading audit counters failed'));
    }, config.firewall.driftCheckSeconds * 1000).unref(),
  );
  if (bridge) timers.push(setInterval(() => void bridge.checkSpoofing().catch((error: unknown) => log.error({ err: error }, 'reading bridge drop counters failed')), SPOOFING_CHECK_MS).unref());
  if (notifier.watchdogMs !== null) {
    const watchdog = new ProgressWatchdog(STUCK_AFTER_MS);
    timers.push(
      setInterval(() => {
        if (watchdog.alive(queue.counters.completed + queue.counters.failed, queue.depth === 0)) notifier.watchdog();
        else log.error({ queue: { depth: queue.depth, ...queue.counters } }, 'no progress; withholding watchdog ping');
      }, Math.max(1, Math.floor(notifier.watchdogMs / 2))),
    );
  }

  let fileWatch: PolicyFileWatch | null = null;
  try {
    fileWatch = watchPolicyFile(config.policy.file, () => reloader.fileChanged(), (error) => log.warn({ err: error }, 'watching the policy file failed; reload with SIGHUP'));
  } catch (error) {
    log.warn({ err: error }, 'cannot watch the policy file; reload with SIGHUP');
  }

  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    notifier.stopping('shutting down');
    log.info('stopping: no new events; firewall rules stay in place');
    fileWatch?.close();
    reloader.stop();
    reconciles.stop();
    for (const timer of timers) clearInterval(timer);
    tableWatch?.close();
    await watcher.stop();
    const drained = await Promise.race([queue.idle().then(() => true), sleep(DRAIN_MS).then(() => false)]);
    if (!drained) log.warn({ queue: { depth: queue.depth } }, 'exiting with work still queued');
    if (!(await alerter.flush(ALERT_FLUSH_MS))) log.warn('alerts not yet delivered stay queued on disk for the next start');
    alerter.close();
    log.info({ queue: queue.counters }, 'stopped');
    // Last: dockerd asks the gate about every request, including those the drain above waited on.
    gate?.server.close();
    gate?.server.closeAllConnections();
    // Scrapers' keep-alive connections would hold the process open: close them too.
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    notifier.close();
    // Our table stays; the guard goes (it is the running daemon's: what keeps it is its nft process).
    guard.close();
    resolveExit(0);
  };

  // Connecting to Docker does not wait for the metrics socket, nor that for Docker.
  watcher.start();
  const listen = parseMetricsListen(config.metrics.listen)!; // validated with the config
  const metricsServer = await serveMetrics(listen, metrics.registry).catch((error: unknown) => {
    // Metrics are for watching dockwarden, not for protecting anything: run without them.
    log.error({ err: error, metrics: { listen: config.metrics.listen } }, 'cannot serve metrics; running without them');
    return null;
  });
  if (metricsServer) log.info({ metrics: { listen: config.metrics.listen } }, 'serving metrics');
  return { exited, reload, shutdown };
}

/** Like Promise.all, but settles only once every one has: a reconcile is not over while a part of it still runs. */
async function settledAll(parts: readonly Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(parts)).find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
