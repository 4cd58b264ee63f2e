/**
 * Images of the image tests: copies of the test image with ids of their own, tags, and the
 * built CLI's `policy explain --json` of a container.
 */
import { join } from 'node:path';
import type { Test } from 'tap';
import { dockwarden } from './cli.js';
import { docker, DOCKER_SOCKET, TEST_IMAGE } from './docker.js';

/**
 * A new image with the test image's content and a unique id (a commit with `label`), so the shared
 * test image never gets a name or repo digest of a test's and the copy can be removed by id.
 * `as` names it, as `docker build -t` would.
 */
export async function commitCopy(label: Record<string, string>, as?: { readonly repo: string; readonly tag: string }): Promise<string> {
  const container = await docker.createContainer({ Image: TEST_IMAGE, Cmd: ['true'], Labels: label });
  try {
    const changes = Object.entries(label).map(([key, value]) => `LABEL ${key}=${value}`).join('\n');
    const { Id } = (await container.commit({ changes, ...as })) as { Id: string };
    return Id;
  } finally {
    await container.remove({ force: true });
  }
}

/** `docker tag ID reference` (reference with its tag). */
export async function tag(id: string, reference: string): Promise<void> {
  const at = reference.lastIndexOf(':');
  await docker.getImage(id).tag({ repo: reference.slice(0, at), tag: reference.slice(at + 1) });
}

/** `dockwarden policy explain CONTAINER --json` under `policy` (YAML text), against the test engine. */
export async function explainJson<Report>(t: Test, policy: string, container: string): Promise<Report> {
  const dir = t.testdir({ 'policy.yaml': policy });
  const result = await dockwarden(['policy', 'explain', container, '--json'], { DOCKWARDEN_POLICY: join(dir, 'policy.yaml'), DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET });
  t.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Report;
}
