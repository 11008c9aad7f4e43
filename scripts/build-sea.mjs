#!/usr/bin/env node
// `npm run build:sea`: the executor as one Linux executable that needs no Node.js on the host
// (Node's single-executable applications): the executor bundled whole as CommonJS (SEA runs
// nothing else), turned into a blob by `node --experimental-sea-config`, injected with postject
// into a copy of the node binary that builds it. That binary must carry the SEA fuse (official
// and Debian builds do); the result runs on hosts of the same architecture and C library.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleExecutorOneFile } from './build.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const output = path.resolve(process.argv[2] ?? path.join(root, 'executor/dist/crossdock-executor'));

if (!readFileSync(process.execPath).includes(FUSE)) {
  console.error(`build:sea: ${process.execPath} (Node ${process.version}) has no single-executable fuse; build with an official or Debian node binary`);
  process.exit(2);
}
const work = mkdtempSync(path.join(tmpdir(), 'crossdock-sea-'));
try {
  const main = path.join(work, 'crossdock-executor.cjs');
  const blob = path.join(work, 'sea-prep.blob');
  await bundleExecutorOneFile(main, 'cjs');
  const config = path.join(work, 'sea-config.json');
  writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true }));
  execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const partial = `${output}.partial`;
  copyFileSync(process.execPath, partial);
  execFileSync(process.execPath, [path.join(root, 'node_modules/postject/dist/cli.js'), partial, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  renameSync(partial, output);
  console.log(`build:sea: ${path.relative(process.cwd(), output)} (${(statSync(output).size / 2 ** 20).toFixed(0)} MiB, needs no Node.js)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
