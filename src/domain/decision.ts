import type { BridgePort } from './bridge/ports.js';
import type { PublishedPort } from './facts.js';
import type { ContainerElements } from './firewall/plan.js';
import type { Action, Cidr, CheckId, ImageHygieneCheckId, Mode, Severity, StorageDirectory } from './policy/model.js';
import type { RelabelOp } from './selinux/plan.js';

/**
 * The whole judgement of one container (`evaluate`): pure data. Each enforcer applies its own part
 * of it and nothing else; none goes back to the policy to decide again (docs/architecture.md).
 */
export interface Decision {
  readonly containerId: string;
  readonly ports: readonly PortVerdict[];
  /** Every finding: runtime checks, the image check, refused relabels; each with what is done about it. */
  readonly violations: readonly JudgedViolation[];
  /** The stop or kill done now (audit mode: none); null when the violations call only for alerts. */
  readonly action: ContainerAction | null;
  /** What enforce mode would do: equal to `action` except in audit mode, which says what it left alone. */
  readonly actionInEnforce: ContainerAction | null;
  /** The published-port firewall's part: its elements, or why it is left out (its ports then stay closed by the baseline). */
  readonly firewall: { readonly elements: ContainerElements; readonly error: string | null };
  /** Bridge isolation's part: the ports it filters; null when isolation does not look at it; an error: it runs unfiltered. */
  readonly bridge: { readonly ports: readonly BridgePort[] } | { readonly error: string } | null;
  /** The host paths to relabel, each once per container start (refusals are `selinux-relabel` violations). */
  readonly relabel: readonly RelabelOp[];
  /** The declared storage directories it bind-mounts: made, with owner and mode, before it runs. */
  readonly storage: readonly StorageDirectory[];
}

export type ContainerAction = 'stop' | 'kill';

/** A violation with what is done about it under the policy's mode. */
export interface JudgedViolation extends Violation {
  /** `action` in enforce mode; `alert` in audit mode. */
  readonly effective: Action;
}

/** Who may open new connections to one published port, and which rule said so. */
export interface PortVerdict {
  readonly port: PublishedPort;
  /** The matching rule's name, or null when `ports.default` decided. */
  readonly rule: string | null;
  /** `any`, or the exact source blocks allowed (empty = nobody). */
  readonly allow: 'any' | readonly Cidr[];
  /** True when a container label narrowed what the rule allowed. */
  readonly narrowedByLabel: boolean;
  /** Why the narrowing label could not be read (the port is then closed to everyone); null when fine or absent. */
  readonly labelError: string | null;
}

export type ViolationCheck = CheckId | 'image' | ImageHygieneCheckId | 'selinux-relabel';

export interface Violation {
  readonly check: ViolationCheck;
  readonly severity: Severity;
  /** What `run` does in enforce mode; audit mode downgrades every action to `alert`. */
  readonly action: Action;
  /** One line for a human, naming what was found. */
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** What is done about a violation: its action in enforce mode, only an alert in audit mode. */
export function effectiveAction(mode: Mode, action: Action): Action {
  return mode === 'audit' ? 'alert' : action;
}

/** The violations with what is done about each under `mode`, and the stop or kill they call for. */
export function judgeViolations(mode: Mode, found: readonly Violation[]): Pick<Decision, 'violations' | 'action' | 'actionInEnforce'> {
  const violations = found.map((v) => ({ ...v, effective: effectiveAction(mode, v.action) }));
  return {
    violations,
    action: strongestAction(violations.map((v) => v.effective)),
    actionInEnforce: strongestAction(violations.map((v) => v.action)),
  };
}

const STRENGTH: Readonly<Record<Action, number>> = { alert: 0, stop: 1, kill: 2 };

/** The strongest of the actions; null when they only call for alerts. */
function strongestAction(actions: Iterable<Action>): ContainerAction | null {
  let best: Action = 'alert';
  for (const action of actions) if (STRENGTH[action] > STRENGTH[best]) best = action;
  return best === 'alert' ? null : best;
}
