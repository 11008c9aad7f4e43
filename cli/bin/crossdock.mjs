#!/usr/bin/env node
// Installed entry point: the bundle built by `npm run build`, or the TypeScript sources
// through tsx in a checkout that has not been built.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/main.mjs', import.meta.url);
if (existsSync(bundle)) {
  await import(bundle.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
