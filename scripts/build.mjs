#!/usr/bin/env node
// Bundles the controller and the executor (with shared/) into one ES module each, so that
// production runs plain JavaScript: no TypeScript loader in the process (about 40 MB less
// resident memory, faster start). Dependencies stay external, resolved from node_modules;
// the CLI's are bundled in, so cli/dist/main.mjs is one file that starts in about 50 ms. The
// dashboard (ui/) is bundled for the browser into controller/dist/ui. The executor is also
// bundled whole, dependencies inside, into crossdock-executor.mjs: the one file a host needs
// (with Node.js 20 or newer), copied on its own.
// `node scripts/build.mjs cli ui` builds only the named bundles.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BANNER = '// Built by scripts/build.mjs from the TypeScript sources; do not edit.';

async function bundle(pkg, entry, outfile, { selfContained = false } = {}) {
  const { dependencies = {} } = JSON.parse(readFileSync(path.join(root, pkg, 'package.json'), 'utf8'));
  const external = selfContained
    ? []
    : Object.keys(dependencies)
        .filter((name) => !name.startsWith('@crossdock/'))
        .flatMap((name) => [name, `${name}/*`]);
  await build({
    entryPoints: [path.join(root, pkg, entry)],
    outfile: path.join(root, pkg, outfile),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    sourcemap: 'linked',
    external,
    logLevel: 'warning',
    banner: {
      js: [
        BANNER,
        // Bundled CommonJS (commander) requires node: built-ins; an ES module has no require of its own.
        ...(selfContained ? ["import { createRequire as __cdCreateRequire } from 'node:module'; const require = __cdCreateRequire(import.meta.url);"] : []),
      ].join('\n'),
    },
  });
}

// The dashboard (ui/): one minified script and one stylesheet, with the graph library inside,
// served by the controller at /ui from controller/dist/ui. Nothing is fetched from elsewhere.
async function bundleUi() {
  const out = path.join(root, 'controller', 'dist', 'ui');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: { app: path.join(root, 'ui', 'src', 'main.ts') },
    outdir: out,
    bundle: true,
    platform: 'browser',
    // What current Chromium and Firefox run (both past these versions since 2023).
    target: ['chrome115', 'firefox115'],
    format: 'esm',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  await build({ entryPoints: { app: path.join(root, 'ui', 'src', 'style.css') }, outdir: out, bundle: true, minify: true, logLevel: 'warning' });
  copyFileSync(path.join(root, 'ui', 'index.html'), path.join(out, 'index.html'));
}

/**
 * Optional modules, each tried inside try/catch by code that works without it: ssh2's native
 * addons (dockerode's SSH transport, which crossdock does not use), ws's bufferutil and
 * utf-8-validate, and debug's supports-color. In the one file they are modules that throw, as a
 * missing one would, so nothing is looked up next to the file (and the single executable's
 * require, which loads only built-in modules, is never asked for one: it would warn).
 */
const leaveOutOptionalModules = {
  name: 'leave-out-optional-modules',
  setup(b) {
    b.onResolve({ filter: /^(cpu-features|bufferutil|utf-8-validate|supports-color)$|\.node$/ }, (args) => ({ path: args.path, namespace: 'left-out' }));
    b.onLoad({ filter: /.*/, namespace: 'left-out' }, (args) => ({
      contents: `throw Object.assign(new Error(${JSON.stringify(`${args.path} is left out of the one-file executor`)}), { code: 'MODULE_NOT_FOUND' });`,
      loader: 'js',
    }));
  },
};

/** The whole executor in one file: `esm` for crossdock-executor.mjs, `cjs` for the single executable (SEA runs CommonJS only). */
export async function bundleExecutorOneFile(outfile, format = 'esm') {
  // CommonJS dependencies call require() and read __dirname: in an ES module both come from here.
  const esmPrelude = [
    "import { createRequire as __crossdockCreateRequire } from 'node:module';",
    "import { fileURLToPath as __crossdockFileURLToPath } from 'node:url';",
    'const require = __crossdockCreateRequire(import.meta.url);',
    'const __filename = __crossdockFileURLToPath(import.meta.url);',
    "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
  ].join('\n');
  const { metafile } = await build({
    entryPoints: [path.join(root, 'executor/src/main.ts')],
    outfile,
    metafile: true,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format,
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: { __CROSSDOCK_BUILD__: JSON.stringify(format === 'esm' ? 'onefile' : 'sea') },
    plugins: [leaveOutOptionalModules],
    // The single executable finds itself through process.execPath; only the ES module reads import.meta.url.
    logOverride: format === 'cjs' ? { 'empty-import-meta': 'silent' } : {},
    banner: { js: format === 'esm' ? `#!/usr/bin/env node\n${BANNER}\n${esmPrelude}` : BANNER },
  });
  // Self-contained means this: whatever the bundle still imports or requires is built into Node.
  const outside = Object.values(metafile.outputs).flatMap((output) => output.imports.filter((i) => !isBuiltin(i.path)).map((i) => i.path));
  if (outside.length > 0)
    throw new Error(
      `the one-file executor would load ${[...new Set(outside)].join(', ')} from beside it; bundle them or leave them out (leaveOutOptionalModules)`,
    );
  chmodSync(outfile, 0o755);
}

const oneFile = path.join(root, 'executor/dist/crossdock-executor.mjs');
const args = process.argv.slice(2);
const quiet = args.includes('--quiet');
const bundles = {
  controller: () => bundle('controller', 'src/server.ts', 'dist/server.mjs'),
  executor: () => bundle('executor', 'src/main.ts', 'dist/main.mjs'),
  onefile: async () => {
    await bundleExecutorOneFile(oneFile);
    if (!quiet) console.log(`build: ${path.relative(root, oneFile)} (${(statSync(oneFile).size / 2 ** 20).toFixed(1)} MiB, needs only Node.js 20+)`);
  },
  cli: () => bundle('cli', 'src/main.ts', 'dist/main.mjs', { selfContained: true }),
  ui: () => bundleUi(),
};

if (process.argv[1] === fileURLToPath(import.meta.url) && args[0] === '--onefile') {
  // Only the one file, where the tests want it: `node scripts/build.mjs --onefile <path>`.
  await bundleExecutorOneFile(path.resolve(args[1] ?? 'crossdock-executor.mjs'));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const wanted = args.filter((a) => !a.startsWith('--'));
  for (const name of wanted) {
    if (!(name in bundles)) {
      console.error(`build: no bundle named ${name}; choose from ${Object.keys(bundles).join(', ')}`);
      process.exit(2);
    }
  }
  for (const name of wanted.length > 0 ? wanted : Object.keys(bundles)) await bundles[name]();
}
