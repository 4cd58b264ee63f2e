import { Worker } from 'node:worker_threads';
import type { DockerEngine } from '../../adapters/docker/engine.js';
import { inheritedSocket } from '../../adapters/systemd-sockets.js';
import type { Policy } from '../../domain/policy/model.js';
import type { Alerter } from '../alerts/alerter.js';
import type { GateConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { gateImages, type GateImages } from './image-lookups.js';
import { judgeRequest, type GateOptions, type GateRequest, type GateVerdict } from './judge-request.js';
import type { FromJudge, FrontOptions, ToJudge } from './gate-worker.js';
import { observedAlert } from '../../domain/alerts/catalogue.js';
import type { DaemonMetrics } from '../metrics.js';

/** `FileDescriptorName=` of systemd/dockwarden-gate.socket. */
export const GATE_FD_NAME = 'dockwarden-gate';

/**
 * The authorization gate when `gate.enabled`: on the socket systemd passes (dockwarden-gate.socket,
 * there before docker.service, so requests wait across a restart of ours) or on `gate.socket`.
 * The protocol is served by a worker thread (gate-worker.ts), which answers at once what needs no
 * judgement and brings the rest here, where the daemon's policy, engine and sync are.
 * Refusals, and in audit mode the refusals that were not made, are logged and alerted; a request
 * that could not be judged is refused, logged and alerted. `images` keeps the image look-ups of
 * creates: the daemon tells it of the engine's image events and event stream. Each decision is timed
 * (`dockwarden_gate_decision_seconds`): dockerd holds its client's request until it is made.
 * `lost` is told when the worker ends while the gate is open: dockerd then refuses every request.
 */
export async function startGate(
  config: GateConfig, docker: DockerEngine, policy: () => Policy, prepareStart: GateOptions['prepareStart'], alerter: Alerter, log: Logger, env: NodeJS.ProcessEnv,
  metrics: Pick<DaemonMetrics, 'gateDecided'>, lost: (error: Error) => void,
): Promise<{ readonly images: GateImages; close(): Promise<void> } | null> {
  if (!config.enabled) return null;
  const fd = inheritedSocket(env, GATE_FD_NAME);
  const allow = { plugins: config.allow.includes('plugins'), services: config.allow.includes('services') };
  const images = gateImages((reference) => docker.inspectImage(reference));
  const engine = { ...docker, inspectImage: images.inspect };
  const onFailure = ({ reason, uri, error }: { reason: string; uri: string | null; error?: unknown }): void => {
    log.error({ gate: { reason, uri }, err: error }, 'gate refused a request it could not judge');
    alerter.raise(observedAlert('daemon.gate-error', `gate refused a request it could not judge: ${reason}`, { details: { uri } }));
  };
  // Under the test runner this module is TypeScript, and so is its worker.
  const url = new URL(import.meta.url.endsWith('.ts') ? './gate-worker.ts' : './gate-worker.js', import.meta.url);
  const options: FrontOptions = { listen: fd === null ? { path: config.socket } : { fd }, timeoutMs: config.timeoutMs };
  const front = new Worker(url, { workerData: options });
  const send = (message: FromJudge): void => front.postMessage(message);
  let open = false;
  let closing = false;
  let ended = false;
  const decide = async (id: number, request: GateRequest): Promise<void> => {
    try {
      const verdict = await judgeRequest(request, { engine, policy, allow, prepareStart });
      if (verdict.allow) images.requestAllowed(request.method, request.uri);
      report(verdict, alerter, log);
      send({ type: 'verdict', id, route: verdict.route, allow: verdict.allow, msg: verdict.msg });
    } catch (error) {
      onFailure({ reason: 'error while judging', uri: request.uri, error });
      send({ type: 'verdict-failed', id, error: error instanceof Error ? error.message : String(error) });
    }
  };
  const listening = new Promise<void>((resolve, reject) => {
    front.on('message', (message: ToJudge) => {
      switch (message.type) {
        case 'listening':
          open = true;
          return resolve();
        case 'cannot-listen':
          return reject(new Error(`cannot serve the gate: ${message.message}`));
        case 'decide':
          return void decide(message.id, { method: message.method, uri: message.uri, body: Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength) });
        case 'answered':
          return message.request === null ? images.imagesMayHaveChanged() : images.requestAnswered(message.request.method, message.request.uri);
        case 'failure':
          return onFailure(message);
        case 'decided':
          return metrics.gateDecided(message.route, message.allow, message.seconds);
      }
    });
    front.once('error', (error) => (open ? undefined : reject(error)));
    front.once('exit', (code) => {
      ended = true;
      if (!open) return reject(new Error(`the gate's worker ended (code ${code}) before it served`));
      if (!closing) lost(new Error(`the gate's worker ended (code ${code})`));
    });
  });
  await listening.catch(async (error: unknown) => {
    await front.terminate();
    throw error;
  });
  log.info({ gate: { socket: fd === null ? config.socket : `fd ${fd} from systemd` } }, 'authorization gate serving');
  return {
    images,
    /** Stops serving: the worker closes its server and connections and ends (ended for it after 1 s). */
    async close() {
      closing = true;
      if (ended) return;
      const exit = new Promise((resolve) => front.once('exit', resolve));
      send({ type: 'close' });
      await Promise.race([exit, new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
      await front.terminate();
    },
  };
}

function report(verdict: GateVerdict, alerter: Alerter, log: Logger): void {
  if (verdict.judged === null) {
    if (verdict.allow) return;
    // An oversized, chunked or unreadable request on a judged endpoint: maybe a client's mistake, maybe an attempt.
    log.warn({ gate: { route: verdict.route, reason: verdict.msg } }, 'gate refused a request it cannot judge');
    alerter.raise(observedAlert('daemon.gate-unjudged', 'gate refused a request it cannot judge', { details: { request: verdict.route, reason: verdict.msg } }));
    return;
  }
  if (verdict.blocking.length === 0) return;
  const { facts } = verdict.judged;
  const container = { id: facts.id, name: facts.name, image: facts.image.reference };
  const audit = verdict.allow;
  log.warn({ gate: { route: verdict.route }, container, violations: verdict.blocking.map((v) => v.check) }, audit ? 'gate would have refused (audit mode)' : 'gate refused');
  for (const v of verdict.blocking) {
    alerter.raise({
      check: v.check,
      severity: v.severity,
      action: audit ? 'alert' : 'refused',
      message: `${audit ? 'would have been refused' : 'refused'} at ${verdict.route}: ${v.message}`,
      container,
      details: { ...v.details, request: verdict.route },
    });
  }
}
