#!/usr/bin/env node
// Bundles the controller and the executor (with shared/) into one ES module each, so that
// production runs plain JavaScript: no TypeScript loader in the process (about 40 MB less
// resident memory, faster start). Dependencies stay external, resolved from node_modules.
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function bundle(pkg, entry, outfile) {
  const { dependencies = {} } = JSON.parse(readFileSync(path.join(root, pkg, 'package.json'), 'utf8'));
  const external = Object.keys(dependencies)
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
    banner: { js: '// Built by scripts/build.mjs from the TypeScript sources; do not edit.' },
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

await bundle('controller', 'src/server.ts', 'dist/server.mjs');
await bundle('executor', 'src/main.ts', 'dist/main.mjs');
await bundleUi();
