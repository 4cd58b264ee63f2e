import type { ContainerInspect } from '../../adapters/docker/facts.js';
import type { Decision, JudgedViolation, Violation } from '../../domain/decision.js';
import { evaluate } from '../../domain/evaluate.js';
import type { ContainerFacts } from '../../domain/facts.js';
import { createToInspect, referencedBy, volumeInspect, type CreateLookups, type VolumeInfo } from '../../domain/gate/create-inspect.js';
import { CREATE_BODY, EXEC_BODY, UPDATE_BODY, VOLUME_CREATE_BODY } from '../../domain/gate/docker-shapes.js';
import { readAsGo, type Shape } from '../../domain/gate/go-json.js';
import { JsonSyntaxError, parseJsonEntries } from '../../domain/gate/json-entries.js';
import { routeRequest, type GateRoute } from '../../domain/gate/route.js';
import type { Policy } from '../../domain/policy/model.js';
import type { GateAllowance } from '../config.js';

/** One request dockerd asks about (`AuthZPlugin.AuthZReq`), decoded. Everything in it is the client's. */
export interface GateRequest {
  readonly method: string;
  readonly uri: string;
  /** The body dockerd forwarded; empty when it forwarded none (too large, chunked, not JSON). */
  readonly body: Buffer;
}

export interface GateVerdict {
  readonly allow: boolean;
  /** Shown to the client after dockerd's "authorization denied by plugin …:"; our words only. */
  readonly msg: string;
  readonly route: GateRoute['kind'];
  /** The container judged, when one was; its decision. */
  readonly judged: { readonly facts: ContainerFacts; readonly decision: Decision } | null;
  /** Violations whose action would stop or kill: the reason for a refusal (or, in audit mode, for one that was not made). */
  readonly blocking: readonly JudgedViolation[];
}

/** What the gate asks the engine while it judges. Its own API calls pass the gate too: they are reads, allowed at once. */
export interface GateEngine {
  inspectImage(reference: string): Promise<CreateLookups['image']>;
  inspectVolume(name: string): Promise<VolumeInfo | null>;
  inspectContainer(id: string): Promise<ContainerInspect | null>;
  dataRoot(): Promise<string>;
  factsOf(inspect: ContainerInspect): Promise<ContainerFacts>;
}

export interface GateOptions {
  readonly engine: GateEngine;
  readonly policy: () => Policy;
  /**
   * The daemon's own sync of a container about to start, awaited: its storage directories are made
   * and its volumes relabelled before dockerd runs the process, and its judgement (null when it is
   * gone) is the gate's. Without it (tests of the gate alone) a start is judged on its inspect.
   */
  readonly prepareStart?: (id: string) => Promise<{ readonly facts: ContainerFacts; readonly decision: Decision } | null>;
  /** Endpoints that run code no container check sees, allowed only when the admin says so (`gate.allow`). */
  readonly allow: readonly GateAllowance[];
}

/** A request on a body-carrying endpoint larger than this never reaches us whole from dockerd anyway (1 MiB in 20.10, 4 MiB later). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * The gate's judgement of one request: the same `evaluate` as every other path, on the facts the
 * request would produce. A violation whose action is stop or kill refuses it (in enforce mode).
 * What cannot be judged — an empty, oversized or unparsable body on a judged endpoint, an unreadable
 * URI, a start that may carry a legacy HostConfig — is refused: dockerd acts on bodies it did not
 * show us (CVE-2024-41110, CVE-2026-34040).
 */
export async function judgeRequest(request: GateRequest, options: GateOptions): Promise<GateVerdict> {
  const route = routeRequest(request.method, request.uri);
  const refuse = (msg: string): GateVerdict => ({ allow: false, msg, route: route.kind, judged: null, blocking: [] });
  const allow: GateVerdict = { allow: true, msg: '', route: route.kind, judged: null, blocking: [] };
  switch (route.kind) {
    case 'other':
      return allow;
    case 'unreadable':
      return refuse(`dockwarden cannot read the request URI (${route.why}); refused`);
    case 'plugin':
    case 'service':
    case 'build': {
      const { allowed, what } = OUTSIDE_THE_CHECKS[route.kind];
      return options.allow.includes(allowed) ? allow : refuse(`dockwarden refuses ${route.endpoint} on this host: ${what} run outside the container checks (gate.allow in dockwarden's config)`);
    }
    case 'start': {
      if (route.legacyBody) return refuse('dockwarden refuses start requests of API versions before 1.24: they may carry a HostConfig the gate is not shown; use a client with API 1.24 or later');
      const inspect = await options.engine.inspectContainer(route.container);
      if (inspect === null) return allow; // dockerd answers 404
      if (options.prepareStart === undefined) return judged(route.kind, await options.engine.factsOf(inspect), options.policy());
      const synced = await options.prepareStart(inspect.Id);
      // A sync that could not judge it (the engine failed it meanwhile) leaves the inspect to judge.
      return synced === null ? judged(route.kind, await options.engine.factsOf(inspect), options.policy()) : verdictOf(route.kind, synced.facts, synced.decision, options.policy());
    }
    case 'volume-create': {
      const body = readBody(request.body, VOLUME_CREATE_BODY);
      if ('error' in body) return refuse(`dockwarden refuses volume-create requests whose body it cannot judge: ${body.error}`);
      const facts = await options.engine.factsOf(volumeInspect(body.value, await options.engine.dataRoot()));
      return judged(route.kind, facts, options.policy(), MOUNT_CHECKS);
    }
    case 'create':
    case 'update':
    case 'exec': {
      const body = readBody(request.body, route.kind === 'create' ? CREATE_BODY : route.kind === 'update' ? UPDATE_BODY : EXEC_BODY);
      if ('error' in body) return refuse(`dockwarden refuses ${route.kind} requests whose body it cannot judge: ${body.error}`);
      const facts = await factsFor(route, body.value, options.engine);
      return facts === null ? allow : judged(route.kind, facts, options.policy());
    }
  }
}

/** The endpoints that run code outside the container checks: the `gate.allow` entry that lets each through, and what it runs. */
const OUTSIDE_THE_CHECKS = {
  plugin: { allowed: 'plugins', what: 'managed plugins' },
  service: { allowed: 'services', what: 'swarm services' },
  build: { allowed: 'builds', what: 'image builds' },
} as const satisfies Record<string, { allowed: GateAllowance; what: string }>;

/** What a volume on its own can violate: what it would mount is all there is to judge before a container uses it. */
const MOUNT_CHECKS: ReadonlySet<Violation['check']> = new Set(['docker-socket', 'sensitive-mounts']);

function judged(route: GateRoute['kind'], facts: ContainerFacts, policy: Policy, only?: ReadonlySet<Violation['check']>): GateVerdict {
  return verdictOf(route, facts, evaluate(policy, facts), policy, only);
}

function verdictOf(route: GateRoute['kind'], facts: ContainerFacts, decision: Decision, policy: Policy, only?: ReadonlySet<Violation['check']>): GateVerdict {
  const blocking = decision.violations.filter((v) => v.action !== 'alert' && (only === undefined || only.has(v.check)));
  const refused = blocking.some((v) => v.effective !== 'alert');
  return {
    allow: !refused,
    msg: refused ? `dockwarden policy ${policy.hash.slice(0, 12)} refuses this ${route}: ${blocking.map(reason).join('; ')}` : '',
    route,
    judged: { facts, decision },
    blocking,
  };
}

/** A refusal's reason in our words: check messages name only policy values, except the image check's, which names the image. */
function reason(v: Violation): string {
  if (v.check !== 'image') return `${v.check} (${v.message})`;
  const { rule, reason: why } = v.details as { rule?: unknown; reason?: unknown };
  return `image (${String(why)}, decided by ${String(rule ?? 'images.default')})`;
}

function readBody(body: Buffer, shape: Shape): { readonly value: Record<string, unknown> } | { readonly error: string } {
  if (body.length === 0) return { error: 'dockerd forwarded no body (larger than its plugin limit, chunked, or not declared as JSON)' };
  if (body.length > MAX_BODY_BYTES) return { error: `body larger than ${MAX_BODY_BYTES} bytes` };
  try {
    const value = readAsGo(parseJsonEntries(body.toString('utf8')), shape);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'the body is not a JSON object' };
    return { value: value as Record<string, unknown> };
  } catch (error) {
    if (error instanceof JsonSyntaxError) return { error: `the body is not JSON (${error.message})` };
    throw error;
  }
}

async function factsFor(route: GateRoute & { kind: 'create' | 'update' | 'exec' }, body: Record<string, unknown>, engine: GateEngine): Promise<ContainerFacts | null> {
  if (route.kind === 'create') return engine.factsOf(await createInspect(body, route.name, engine));
  const inspect = await engine.inspectContainer(route.container);
  if (inspect === null) return null; // dockerd answers 404
  if (route.kind === 'update') return engine.factsOf({ ...inspect, HostConfig: { ...inspect.HostConfig, ...changedByUpdate(body) } });
  const facts = await engine.factsOf(inspect);
  const command = Array.isArray(body.Cmd) ? body.Cmd.filter((c): c is string => typeof c === 'string') : [];
  const exec = { id: '', privileged: body.Privileged === true, command, user: typeof body.User === 'string' ? body.User : '', running: false, uids: null };
  return { ...facts, execs: [...facts.execs, exec] };
}

/** `docker update` leaves a field as it is when the request gives its zero value (Go's update semantics). */
function changedByUpdate(body: Record<string, unknown>): Record<string, unknown> {
  const changed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (value === undefined || value === null || value === 0 || value === '') continue;
    if (key === 'RestartPolicy' && (typeof value !== 'object' || (value as { Name?: unknown }).Name === '' || (value as { Name?: unknown }).Name === undefined)) continue;
    changed[key] = value;
  }
  return changed;
}

async function createInspect(body: Record<string, unknown>, name: string | null, engine: GateEngine): Promise<ContainerInspect> {
  const reference = typeof body.Image === 'string' ? body.Image : '';
  const named = referencedBy(body);
  const [image, dataRoot, volumes, containers] = await Promise.all([
    reference === '' ? null : engine.inspectImage(reference),
    engine.dataRoot(),
    Promise.all(named.volumes.map(async (n) => [n, await engine.inspectVolume(n)] as const)),
    Promise.all(named.containers.map(async (c) => [c, (await engine.inspectContainer(c))?.Mounts ?? null] as const)),
  ]);
  const volumeMap = new Map(volumes);
  const mountsMap = new Map(containers);
  return createToInspect(body, name, {
    image,
    volume: (n) => volumeMap.get(n) ?? null,
    newVolumeMountpoint: (n) => `${dataRoot}/volumes/${n}/_data`,
    mountsOf: (c) => mountsMap.get(c) ?? null,
  });
}
