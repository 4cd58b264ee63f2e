import type { ViolationCheck } from '../decision.js';
import type { ObservedAlert } from './catalogue.js';
import { boundDetails } from './bounded-details.js';
import type { ContainerRef } from '../facts.js';
import type { Action, Mode, Severity } from '../policy/model.js';

/** Policy severities plus `info`, for what the daemon says about itself that is not a problem (Docker is back). */
export const ALERT_SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type AlertSeverity = Severity | 'info';

/** A check of the policy, or an alert of the catalogue (`daemon.<what>` for what the daemon reports about itself). */
export type AlertCheck = ViolationCheck | ObservedAlert;

/** What the daemon did about it: a policy action (already downgraded in audit mode), or a self-report. */
export type AlertAction = Action | 'none' | 'repaired' | 'refused' | 'dropped';

/** The container an alert is about, named as logs name it. */
export type AlertContainer = ContainerRef;

/** What a caller hands `Alerter.raise`; the alerter adds id, time, host, mode and policy hash. */
export interface AlertInput {
  readonly check: AlertCheck;
  readonly severity: AlertSeverity;
  /** Fixed text written by us. Untrusted values (names, labels, paths) go in `container` / `details`. */
  readonly message: string;
  /** Defaults to `none`. */
  readonly action?: AlertAction;
  readonly container?: AlertContainer | null;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** The one alert record every sink carries (README "Alerts"). */
export interface Alert {
  /** UUIDv7, assigned once and persisted with the record: the idempotency key across retries and restarts. */
  readonly id: string;
  readonly time: string;
  readonly host: string;
  readonly severity: AlertSeverity;
  readonly check: AlertCheck;
  readonly container: AlertContainer | null;
  readonly action: AlertAction;
  readonly mode: Mode;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
  readonly policyHash: string;
}

export interface AlertContext {
  readonly host: string;
  readonly mode: Mode;
  readonly policyHash: string;
}

export function severityAtLeast(severity: AlertSeverity, min: AlertSeverity): boolean {
  return ALERT_SEVERITIES.indexOf(severity) >= ALERT_SEVERITIES.indexOf(min);
}

export function makeAlert(input: AlertInput, context: AlertContext, time: Date, random: Uint8Array): Alert {
  const container = input.container
    ? { id: wellFormed(input.container.id), name: wellFormed(input.container.name), image: wellFormed(input.container.image) }
    : null;
  return {
    id: uuidv7(time.getTime(), random),
    time: time.toISOString(),
    host: context.host,
    severity: input.severity,
    check: input.check,
    container,
    action: input.action ?? 'none',
    mode: context.mode,
    message: wellFormed(input.message),
    details: boundDetails(input.details ?? {}),
    policyHash: context.policyHash,
  };
}

/** RFC 9562 UUIDv7: 48-bit ms timestamp, version, 74 random bits; sorts by time. `random` gives ≥ 10 bytes. */
export function uuidv7(ms: number, random: Uint8Array): string {
  const b = new Uint8Array(16);
  let t = ms;
  for (let i = 5; i >= 0; i--) {
    b[i] = t % 256;
    t = Math.floor(t / 256);
  }
  b.set(random.subarray(0, 10), 6);
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const hex = Buffer.from(b).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Lone surrogates (what undecodable bytes can leave in a JS string) become U+FFFD, so every sink gets valid UTF-8. */
export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD');
}
