// A strict reader of the Prometheus text exposition format (version 0.0.4), for tests: every
// line must be a comment, a HELP, a TYPE or a sample of a declared family, or it throws.
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;

function parseValue(text: string, line: string): number {
  // As Prometheus reads them (Go's ParseFloat): Inf and NaN in any case (prom-client writes "Nan").
  if (/^\+?inf$/i.test(text)) return Number.POSITIVE_INFINITY;
  if (/^-inf$/i.test(text)) return Number.NEGATIVE_INFINITY;
  if (/^nan$/i.test(text)) return Number.NaN;
  const value = Number(text);
  if (!Number.isFinite(value) || text.trim() === '') throw new Error(`not a sample value: ${JSON.stringify(line)}`);
  return value;
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const start = LABEL.lastIndex;
    const match = LABEL.exec(text);
    if (!match || match.index !== start) throw new Error(`malformed labels in ${JSON.stringify(line)}`);
    if (match[1]! in labels) throw new Error(`label ${match[1]} repeated in ${JSON.stringify(line)}`);
    labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    if (match[3] === '') break;
  }
  return labels;
}

/** The family a sample belongs to: histogram and summary samples carry suffixes. */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  if (families.has(name)) return families.get(name);
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const family = families.get(name.slice(0, -suffix.length));
      if (family && (family.type === 'histogram' || family.type === 'summary')) return family;
    }
  }
  return undefined;
}

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const declare = (name: string): Family => {
    if (!NAME.test(name)) throw new Error(`bad metric name ${JSON.stringify(name)}`);
    let family = families.get(name);
    if (!family) {
      family = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, family);
    }
    return family;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!meta) continue; // a plain comment
      const family = declare(meta[2]!);
      if (meta[1] === 'HELP') family.help = meta[3]!;
      else {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(meta[3]!)) throw new Error(`unknown type in ${JSON.stringify(line)}`);
        if (family.samples.length > 0) throw new Error(`TYPE after samples of ${family.name}`);
        family.type = meta[3] as Family['type'];
      }
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const family = familyOf(match[1]!, families);
    if (!family) throw new Error(`sample of an undeclared family: ${JSON.stringify(line)}`);
    family.samples.push({ name: match[1]!, labels: match[2] ? parseLabels(match[2], line) : {}, value: parseValue(match[3]!, line) });
  }
  for (const family of families.values()) checkHistogram(family);
  return families;
}

/** Each series' buckets are cumulative and end in +Inf, equal to its _count. */
function checkHistogram(family: Family): void {
  if (family.type !== 'histogram') return;
  const series = new Map<string, { buckets: Sample[]; count?: Sample }>();
  const keyOf = (s: Sample) => JSON.stringify(Object.entries(s.labels).filter(([k]) => k !== 'le'));
  for (const s of family.samples) {
    const entry = series.get(keyOf(s)) ?? { buckets: [] };
    if (s.name === `${family.name}_bucket`) entry.buckets.push(s);
    if (s.name === `${family.name}_count`) entry.count = s;
    series.set(keyOf(s), entry);
  }
  for (const { buckets, count } of series.values()) {
    if (buckets.length === 0 || !count) throw new Error(`histogram ${family.name} lacks buckets or a count`);
    for (let i = 1; i < buckets.length; i++) {
      if (buckets[i]!.value < buckets[i - 1]!.value) throw new Error(`histogram ${family.name}: buckets are not cumulative`);
    }
    const last = buckets.at(-1)!;
    if (last.labels.le !== '+Inf' || last.value !== count.value) throw new Error(`histogram ${family.name}: the +Inf bucket must equal the count`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`; throws when there is none. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = familyOf(name, families);
  const found = family?.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) ?? [];
  if (found.length !== 1) throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]!.value;
}
