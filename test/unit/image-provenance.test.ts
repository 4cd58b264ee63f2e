import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import t from 'tap';
import type { ImageFacts } from '../../src/domain/facts.js';
import { compileGlob } from '../../src/domain/glob.js';
import { imageName, imageProvenance } from '../../src/domain/image-provenance.js';
import { selectorMatches } from '../../src/domain/selector.js';
import { makeFacts } from '../helpers/facts.js';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const IMAGE_ID = `sha256:${'ab'.repeat(32)}`;

const image = (reference: string, repoTags: string[], repoDigests: string[]): ImageFacts => ({ reference, id: IMAGE_ID, repoTags, repoDigests });
const judged = (facts: ImageFacts) => {
  const p = imageProvenance(facts);
  return [p.referencedBy, p.judgedAs, p.names.map((n) => n.normalised)];
};

t.test('a reference whose repository has a repo digest is judged as itself', async (t) => {
  t.same(judged(image('busybox:1', ['busybox:1'], [`busybox@${D1}`])), ['name', 'reference', ['docker.io/library/busybox:1']], 'Docker Hub digests in their familiar form');
  t.same(judged(image('busybox:1.36', ['busybox:1.36'], [`docker.io/library/busybox@${D1}`])), ['name', 'reference', ['docker.io/library/busybox:1.36']], 'the repository is proven, the tag is not');
  t.same(judged(image(`quay.io/x/y@${D2}`, [], [`quay.io/x/y@${D1}`])), ['name', 'reference', [`quay.io/x/y@${D2}`]], 'a digest the image lacks is for pinning to refuse');
});

t.test('a name no repo digest backs proves nothing: the image is judged as what its repo digests prove', async (t) => {
  t.same(judged(image('busybox:latest', ['busybox:latest'], [])), ['name', 'local', []], 'docker tag of a local image');
  t.same(
    judged(image('busybox:latest', ['busybox:latest', 'quay.io/x/y:1'], [`quay.io/x/y@${D1}`])),
    ['name', 'repo digests', ['quay.io/x/y:1', `quay.io/x/y@${D1}`]],
    'pulled from quay.io, tagged busybox: it is quay.io/x/y',
  );
  t.same(
    judged(image('busybox:latest', ['busybox:latest', 'quay.io/a/b:1', 'quay.io/c/d:1'], [`quay.io/a/b@${D1}`, `quay.io/c/d@${D1}`])),
    ['name', 'repo digests', ['quay.io/a/b:1', 'quay.io/c/d:1', `quay.io/a/b@${D1}`, `quay.io/c/d@${D1}`]],
    'in two repositories: both',
  );
});

t.test('by image id: the names the repo digests prove; none → local', async (t) => {
  t.same(judged(image(IMAGE_ID, ['busybox:1', 'evil.io/x:1'], [`busybox@${D1}`])), ['image id', 'repo digests', ['docker.io/library/busybox:1', `docker.io/library/busybox@${D1}`]]);
  t.same(judged(image('abab', ['busybox:1'], [])), ['image id', 'local', []], 'a short id of a local image');
  t.same(judged(image('abab', ['abab:latest'], [])), ['name', 'local', []], 'a name before an id prefix, as dockerd resolves it');
});

t.test('a reference that does not parse', async (t) => {
  const p = imageProvenance(image('Nginx:1', [], [`nginx@${D1}`]));
  t.equal(p.judgedAs, 'invalid');
  t.same(p.names, []);
  t.equal(imageName(image('Nginx:1', [], [])), 'Nginx:1', 'shown as given');
  t.equal(imageName(image('nginx', [], [])), 'docker.io/library/nginx:latest');
});

t.test('parsed once per image facts, and once per image the facts of many containers describe', async (t) => {
  const facts = image('busybox:1', [], [`busybox@${D1}`]);
  t.equal(imageProvenance(facts), imageProvenance(facts));
  t.equal(imageProvenance(image('busybox:1', [], [`busybox@${D1}`])), imageProvenance(facts), "another container's facts of the same image");
  // What it is judged from, each changed alone, is judged again.
  t.same(judged(image('busybox:1', [], [])), ['name', 'local', []], 'the repo digest gone (a retag of a local image)');
  t.same(judged(image('busybox:1', [], [`quay.io/x/y@${D1}`])), ['name', 'repo digests', [`quay.io/x/y@${D1}`]], 'a repo digest of another repository');
  t.same(judged(image(IMAGE_ID, ['busybox:1'], [`busybox@${D1}`])), ['image id', 'repo digests', ['docker.io/library/busybox:1', `docker.io/library/busybox@${D1}`]], 'created by id');
  t.same(judged(image(IMAGE_ID, [], [`busybox@${D1}`])), ['image id', 'repo digests', [`docker.io/library/busybox@${D1}`]], 'a tag gone');
  t.same(judged({ ...image('abab', [], []), id: `sha256:${'cd'.repeat(32)}` }), ['name', 'local', []], 'a prefix of another image id is a name');
  t.same(judged(image('abab', [], [])), ['image id', 'local', []], 'a prefix of its own id is the id');
  const long = `registry.example/${'a'.repeat(5000)}:1`;
  t.same(judged(image(long, [], [])), ['name', 'invalid', []], 'a reference too long to keep is judged each time');
  t.same(judged(image(long, [], [])), ['name', 'invalid', []]);
  // More distinct images than are kept: each still judged as itself.
  for (let i = 0; i < 600; i++) t.same(judged(image(`app${i}:1`, [], [`app${i}@${D1}`])), ['name', 'reference', [`docker.io/library/app${i}:1`]]);
});

t.test('an image selector holds for a proven name only', async (t) => {
  const portainer = { image: compileGlob('docker.io/portainer/portainer-ce:*') };
  const facts = (img: ImageFacts) => makeFacts({ image: img });
  const pulled = image('portainer/portainer-ce:2.21', ['portainer/portainer-ce:2.21'], [`portainer/portainer-ce@${D1}`]);
  t.ok(selectorMatches(portainer, facts(pulled)));
  t.notOk(selectorMatches(portainer, facts(image('portainer/portainer-ce:x', ['portainer/portainer-ce:x'], []))), 'a local tag');
  t.notOk(selectorMatches(portainer, facts(image('portainer/portainer-ce:x', ['portainer/portainer-ce:x', 'evil.io/p:1'], [`evil.io/p@${D1}`]))), 'pulled elsewhere, tagged portainer');
  t.ok(selectorMatches(portainer, facts(image(IMAGE_ID, ['portainer/portainer-ce:2.21'], [`portainer/portainer-ce@${D1}`]))), 'by id: its proven tag');
  t.ok(
    selectorMatches(portainer, facts(image('mine:1', ['portainer/portainer-ce:2.21', 'quay.io/m/p:1'], [`portainer/portainer-ce@${D1}`, `quay.io/m/p@${D1}`]))),
    'any proven name: the content is what Docker Hub serves as portainer-ce',
  );
  t.ok(selectorMatches({ container: compileGlob('web') }, facts(image('x:1', [], []))), 'container-name selectors do not look at the image');
});

t.test('long image texts are not kept: 256 references of 256 KiB each leave the heap as it was', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  gc();
  const before = getHeapStatistics().used_heap_size;
  // Fewer than are kept at most (512) with those of the tests above: without the bound, each would stay.
  for (let i = 0; i < 256; i++) imageProvenance(image(`registry.example/${String(i).padStart(262144, 'a')}:1`, [], []));
  gc();
  const grown = getHeapStatistics().used_heap_size - before;
  t.ok(grown < 8 * 2 ** 20, `the heap grew ${(grown / 2 ** 20).toFixed(1)} MiB (kept, each would hold its text: 256 × 256 KiB)`);
});
