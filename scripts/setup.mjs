#!/usr/bin/env node
// Makes a fresh clone runnable: installs dependencies with the pinned pnpm and generates the
// Prisma client, each only when its inputs changed since the last run. Used by npm start,
// npm test and the other root scripts, so a newcomer needs nothing but Node and npm.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PNPM = 'pnpm@12.4.2';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stampFile = path.join(root, 'node_modules', '.crossdock-setup.json');
const quiet = process.argv.includes('--quiet');

function digest(...files) {
  const hash = createHash('sha256');
  for (const f of files) hash.update(existsSync(path.join(root, f)) ? readFileSync(path.join(root, f)) : '');
  return hash.digest('hex');
}

function run(file, args, extraEnv = {}) {
  execFileSync(file, args, { cwd: root, stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'inherit'], env: { ...process.env, ...extraEnv } });
}

const stamp = existsSync(stampFile) ? JSON.parse(readFileSync(stampFile, 'utf8')) : {};
const want = {
  install: digest(
    'pnpm-lock.yaml',
    'package.json',
    'pnpm-workspace.yaml',
    'cli/package.json',
    'controller/package.json',
    'executor/package.json',
    'shared/package.json',
    'test/package.json',
    'ui/package.json',
  ),
  generate: digest('prisma/schema.prisma', 'prisma/postgresql/schema.prisma'),
};

if (stamp.install !== want.install || !existsSync(path.join(root, 'node_modules', '.modules.yaml'))) {
  if (!quiet) console.log('crossdock setup: installing dependencies (first run compiles better-sqlite3, about 2 minutes)');
  // node-gyp would download Node's headers; Debian and the official images ship them.
  const nodedir = existsSync('/usr/include/node/node.h') ? { npm_config_nodedir: '/usr' } : {};
  const frozen = process.env.CI ? ['--frozen-lockfile'] : [];
  run('npx', ['-y', PNPM, 'install', ...frozen], { ...nodedir, npm_config_update_notifier: 'false' });
  stamp.install = want.install;
  delete stamp.generate;
}

if (
  stamp.generate !== want.generate ||
  !existsSync(path.join(root, 'controller/src/generated/prisma/client.ts')) ||
  !existsSync(path.join(root, 'controller/src/generated/prisma-pg/client.ts'))
) {
  if (!quiet) console.log('crossdock setup: generating the Prisma clients (SQLite and PostgreSQL)');
  const prisma = path.join(root, 'node_modules', '.bin', 'prisma');
  run(prisma, ['generate'], { PRISMA_HIDE_UPDATE_MESSAGE: '1' });
  run(prisma, ['generate', '--config', 'prisma/postgresql/prisma.config.ts'], { PRISMA_HIDE_UPDATE_MESSAGE: '1' });
  stamp.generate = want.generate;
}

writeFileSync(stampFile, JSON.stringify(stamp));
