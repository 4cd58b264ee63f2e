import type { ContainerFacts, PublishedPort } from './facts.js';
import { imageProvenance } from './image-provenance.js';
import type { PortRange, Selector } from './policy/model.js';

/**
 * Whether every field of `selector` holds for the container (and, for port fields, for `port`).
 * A selector with port fields never matches a container as a whole.
 *
 * `image` holds when one of the names the image's repo digests prove matches (a pull from, or a push
 * to, that repository): a tag alone proves nothing, and a local image (no repo digest) matches no
 * image pattern. `container` and `label` are what whoever creates the container says they are.
 */
export function selectorMatches(selector: Selector, facts: ContainerFacts, port?: PublishedPort): boolean {
  if (selector.container && !selector.container.test(facts.name)) return false;
  if (selector.image) {
    const pattern = selector.image;
    if (!imageProvenance(facts.image).names.some((name) => pattern.test(name.normalised))) return false;
  }
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

function inRange(range: PortRange, proto: string, port: number): boolean {
  return range.proto === proto && port >= range.from && port <= range.to;
}
