// Shared by every benchmark: repeat a measurement, summarize it (median, min, max), print one
// table and one summary line, and write the same figures as JSON under bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'results');
export const MIN_RUNS = 5;

export interface Stat {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function summarize(samples: number[]): Stat {
  if (samples.length === 0) throw new Error('no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, runs: sorted.length };
}

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Runs `once` `runs` times (after `warmup` unmeasured runs) and summarizes its returned ms. */
export async function repeat(runs: number, once: () => Promise<number>, warmup = 1): Promise<Stat> {
  for (let i = 0; i < warmup; i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < Math.max(runs, 1); i++) samples.push(await once());
  return summarize(samples);
}

export interface Row {
  name: string;
  stat?: Stat;
  /** unit of stat, default ms */
  unit?: string;
  /** free-form columns (ratios, p99, throughput...) */
  extra?: Record<string, string | number>;
}

export interface BenchReport {
  bench: string;
  rows: Row[];
  summary: string;
  targets?: Array<{ figure: string; target: string; measured: string; met: boolean | null }>;
  notes?: string[];
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

export function printReport(report: BenchReport): void {
  const extraKeys = [...new Set(report.rows.flatMap((r) => Object.keys(r.extra ?? {})))];
  const header = ['case', 'median', 'min', 'max', 'runs', ...extraKeys];
  const lines = report.rows.map((r) => [
    r.name,
    r.stat ? `${fmt(r.stat.median)} ${r.unit ?? 'ms'}` : '',
    r.stat ? fmt(r.stat.min) : '',
    r.stat ? fmt(r.stat.max) : '',
    r.stat ? String(r.stat.runs) : '',
    ...extraKeys.map((k) => {
      const v = r.extra?.[k];
      return v === undefined ? '' : typeof v === 'number' ? fmt(v) : v;
    }),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`\n## ${report.bench}`);
  console.log(row(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(row(l));
  for (const t of report.targets ?? [])
    console.log(`target: ${t.figure}: ${t.target}; measured ${t.measured} -> ${t.met === null ? 'n/a' : t.met ? 'met' : 'MISSED'}`);
  for (const n of report.notes ?? []) console.log(`note: ${n}`);
  console.log(`summary: ${report.summary}`);
}

export function writeReport(report: BenchReport): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${report.bench}.json`);
  const machine = {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: os.release(),
  };
  writeFileSync(file, `${JSON.stringify({ ...report, machine, at: new Date().toISOString() }, null, 2)}\n`);
  return file;
}

export interface Bench {
  name: string;
  description: string;
  /** why it cannot run here, or null */
  unavailable?: () => string | null;
  run(): Promise<BenchReport>;
}
