import type { PublishedPort } from './facts.js';
import type { Action, Cidr, CheckId, Mode, Severity } from './policy/model.js';

/** What the policy says about one container. Pure data: enforcers turn it into effects. */
export interface Decision {
  readonly containerId: string;
  readonly ports: readonly PortVerdict[];
  readonly violations: readonly Violation[];
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

export type ViolationCheck = CheckId | 'image' | 'selinux-relabel' | 'spoofing' | 'ports';

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
