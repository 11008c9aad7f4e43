// `npm run bench` runs every benchmark; `npm run bench -- <name> [...]` runs the named ones.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CA_KEY_FILE, createCertificateAuthority } from '../controller/src/tls.ts';
import { TEST_CA_DIR_ENV } from '../test/support/test-ca.ts';
import { printReport, writeReport, type Bench } from './harness.ts';

// The controllers the benchmarks start speak HTTPS, as in production: they share one CA (seeded
// beside each database by startController), which this process must trust from its start
// (NODE_EXTRA_CA_CERTS is read once), so it runs itself again with it.
if (!process.env[TEST_CA_DIR_ENV]) {
  const caDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'tls-ca');
  mkdirSync(caDir, { recursive: true });
  if (!existsSync(path.join(caDir, CA_KEY_FILE))) await createCertificateAuthority(caDir);
  const again = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [TEST_CA_DIR_ENV]: caDir, NODE_EXTRA_CA_CERTS: path.join(caDir, 'ca.pem') },
  });
  process.exit(again.status ?? 1);
}

const BENCHES: Record<string, () => Promise<{ default: Bench }>> = {
  apply: () => import('./apply.ts'),
  observe: () => import('./observe.ts'),
  converge: () => import('./converge.ts'),
  allocate: () => import('./allocate.ts'),
  reach: () => import('./reach.ts'),
  drift: () => import('./drift.ts'),
  overlay: () => import('./overlay.ts'),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !(w in BENCHES));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')}; choose from ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const name of wanted.length > 0 ? wanted : Object.keys(BENCHES)) {
  const bench = (await BENCHES[name]!()).default;
  const why = bench.unavailable?.();
  if (why) {
    console.log(`\n## ${name}\nskipped: ${why}`);
    continue;
  }
  try {
    const report = await bench.run();
    printReport(report);
    console.log(`results: ${writeReport(report)}`);
  } catch (error) {
    failed = true;
    console.error(`\n## ${name}\nfailed: ${(error as Error).stack ?? error}`);
  }
}
process.exit(failed ? 1 : 0);
