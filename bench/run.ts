// `npm run bench` runs every benchmark; `npm run bench -- <name> [...]` runs the named ones.
import { printReport, writeReport, type Bench } from './harness.ts';

const BENCHES: Record<string, () => Promise<{ default: Bench }>> = {
  apply: () => import('./apply.ts'),
  observe: () => import('./observe.ts'),
  converge: () => import('./converge.ts'),
  allocate: () => import('./allocate.ts'),
  reach: () => import('./reach.ts'),
  drift: () => import('./drift.ts'),
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
