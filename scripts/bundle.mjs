// scripts/bundle.mjs — the shipped CLI and daemon, bundled (part of `npm run build`, after tsc).
//
// Each module node loads costs heap (its source text, module records, functions) whether or not it is
// used: the daemon's graph — ours, zod with every locale, yaml, pino, convict — as ~200 files held
// ~3.6 MiB of source text alone. Bundled, minified, without comments and unused exports, the daemon
// takes ~10 MiB less RSS (README "Scale", daemon-rss). Split into chunks, each command loads only its
// own: one file of everything cost the daemon ~5 MiB more (more source to hold and parse). Output:
//   dist/cli/main.js           the CLI (package.json "bin"), replacing tsc's entry; the rest of dist/ stays
//                              as tsc wrote it (a tsc-only build still runs, module by module)
//   dist/cli/run.js            `dockwarden run`, the daemon (main.js imports it on demand, as tsc's does)
//   dist/cli/policy-worker.cjs the policy reader's worker (src/app/policy-reader.ts finds it beside its caller):
//                              one CommonJS file of its own, not chunks: a worker started from it skips the
//                              ES module loader's start and a resolution per chunk, ~30 ms of the worker's
//                              start, which the daemon's first start-up step waits for (issue #15). Its
//                              code (yaml, zod, the policy's schema) is in the chunks too, for the CLI's
//                              commands; the worker's heap goes when its read is done.
//   dist/cli/chunk-*.js        shared by those, loaded on demand; in dist/cli/ too, so that the addons'
//                              relative path holds from every chunk (src/adapters/native-addon.ts)
// unix-dgram stays a file as well (a native module, loaded from node_modules/ at run time).
import { readdirSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const OUT = 'dist/cli';
// Chunk names change with their content: the last build's must not pile up.
// tsc's source maps of the entries would describe files that are no longer there.
// (policy-worker.js: the ES module worker of earlier builds.)
for (const f of readdirSync(OUT)) if (/^chunk-.*\.js$|^(main|run)\.js\.map$|^policy-worker\.js$/.test(f)) rmSync(`${OUT}/${f}`);

const common = {
  outdir: OUT,
  bundle: true,
  platform: 'node',
  target: 'node20',
  minify: true,
  // Function and class names stay (stack traces, error names in the logs).
  keepNames: true,
  legalComments: 'none',
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: { main: 'src/cli/main.ts', run: 'src/cli/run.ts' },
  splitting: true,
  chunkNames: 'chunk-[hash]',
  format: 'esm',
  // CommonJS dependencies (pino, yaml, convict) call require() for node's own modules.
  banner: { js: "import { createRequire as __bundleRequire } from 'node:module';\nconst require = __bundleRequire(import.meta.url);" },
});

await build({ ...common, entryPoints: { 'policy-worker': 'src/app/policy-worker.ts' }, format: 'cjs', outExtension: { '.js': '.cjs' } });
