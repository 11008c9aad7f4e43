#!/usr/bin/env node
// Bundles the controller and the executor (with shared/) into one ES module each, so that
// production runs plain JavaScript: no TypeScript loader in the process (about 40 MB less
// resident memory, faster start). Dependencies stay external, resolved from node_modules.
import { readFileSync } from 'node:fs';
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

await bundle('controller', 'src/server.ts', 'dist/server.mjs');
await bundle('executor', 'src/main.ts', 'dist/main.mjs');
