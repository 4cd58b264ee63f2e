import type { ContainerFacts, PublishedPort } from './facts.js';
import { parseImageReference } from './image-reference.js';
import type { PortRange, Selector } from './policy/model.js';

/**
 * Whether every field of `selector` holds for the container (and, for port fields, for `port`).
 * A selector with port fields never matches a container as a whole.
 */
export function selectorMatches(selector: Selector, facts: ContainerFacts, port?: PublishedPort): boolean {
  if (selector.container && !selector.container.test(facts.name)) return false;
  if (selector.image && !selector.image.test(imageName(facts))) return false;
  if (selector.labels) {
    for (const [key, glob] of selector.labels) {
      const value = facts.labels[key];
      if (value === undefined || !glob.test(value)) return false;
    }
  }
  if (selector.port && !(port && inRange(selector.port, port.proto, port.hostPort))) return false;
  if (selector.containerPort && !(port && inRange(selector.containerPort, port.proto, port.containerPort))) return false;
  return true;
}

/** The image as policies name it: the normalised reference, or what was given when it does not parse. */
export function imageName(facts: ContainerFacts): string {
  const parsed = parseImageReference(facts.image.reference);
  return parsed.ok ? parsed.ref.normalised : facts.image.reference;
}

function inRange(range: PortRange, proto: string, port: number): boolean {
  return range.proto === proto && port >= range.from && port <= range.to;
}
