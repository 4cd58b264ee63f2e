import type { Server } from 'node:http';
import type { DockerEngine } from '../../adapters/docker/engine.js';
import { serveAuthz } from '../../adapters/gate/authz-server.js';
import { inheritedSocket } from '../../adapters/systemd-sockets.js';
import type { Policy } from '../../domain/policy/model.js';
import type { Alerter } from '../alerts/alerter.js';
import type { GateConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { gateImages, type GateImages } from './image-lookups.js';
import { judgeRequest, type GateOptions, type GateVerdict } from './judge-request.js';
import { observedAlert } from '../../domain/alerts/catalogue.js';
import type { DaemonMetrics } from '../metrics.js';

/** `FileDescriptorName=` of systemd/dockwarden-gate.socket. */
export const GATE_FD_NAME = 'dockwarden-gate';

/**
 * The authorization gate when `gate.enabled`: on the socket systemd passes (dockwarden-gate.socket,
 * there before docker.service, so requests wait across a restart of ours) or on `gate.socket`.
 * Refusals, and in audit mode the refusals that were not made, are logged and alerted; a request
 * that could not be judged is refused, logged and alerted. `images` keeps the image look-ups of
 * creates: the daemon tells it of the engine's image events and event stream. Each decision is timed
 * (`dockwarden_gate_decision_seconds`): dockerd holds its client's request until it is made.
 */
export async function startGate(
  config: GateConfig, docker: DockerEngine, policy: () => Policy, prepareStart: GateOptions['prepareStart'], alerter: Alerter, log: Logger, env: NodeJS.ProcessEnv,
  metrics: Pick<DaemonMetrics, 'gateDecision'>,
): Promise<{ readonly server: Server; readonly images: GateImages } | null> {
  if (!config.enabled) return null;
  const fd = inheritedSocket(env, GATE_FD_NAME);
  const images = gateImages((reference) => docker.inspectImage(reference));
  const engine = { ...docker, inspectImage: images.inspect };
  const server = await serveAuthz({
    listen: fd === null ? { path: config.socket } : { fd },
    timeoutMs: config.timeoutMs,
    decide: (request) =>
      metrics.gateDecision(() =>
        judgeRequest(request, { engine, policy, allow: config.allow, prepareStart }).then((verdict) => {
          if (verdict.allow) images.requestAllowed(request.method, request.uri);
          report(verdict, alerter, log);
          return verdict;
        }),
      ),
    answered: (request) => (request === null ? images.imagesMayHaveChanged() : images.requestAnswered(request.method, request.uri)),
    onFailure: ({ reason, uri, error }) => {
      log.error({ gate: { reason, uri }, err: error }, 'gate refused a request it could not judge');
      alerter.raise(observedAlert('daemon.gate-error', `gate refused a request it could not judge: ${reason}`, { details: { uri } }));
    },
  });
  log.info({ gate: { socket: fd === null ? config.socket : `fd ${fd} from systemd` } }, 'authorization gate serving');
  return { server, images };
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
