// What the CLI prints: aligned tables, colour only on a terminal (and never with NO_COLOR),
// durations and ages people read at a glance.
const ESC = '\u001b[';
const CODES = { red: '31', green: '32', yellow: '33', dim: '2', bold: '1' } as const;
export type Colour = keyof typeof CODES;

/** https://no-color.org: any non-empty NO_COLOR turns colour off; so does a non-terminal. */
export function colourWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR && env.TERM !== 'dumb';
}

export class Output {
  constructor(
    readonly colour: boolean,
    private readonly stdout: { write(text: string): unknown } = process.stdout,
  ) {}

  paint(colour: Colour | undefined, text: string): string {
    return this.colour && colour && text !== '' ? `${ESC}${CODES[colour]}m${text}${ESC}0m` : text;
  }

  line(text = ''): void {
    this.stdout.write(`${text}\n`);
  }

  /** Columns padded to their widest cell (colour codes not counted), two spaces apart. */
  table(headers: string[], rows: string[][]): void {
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ''))));
    const render = (cells: string[]) =>
      cells
        .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell))))
        .join('  ')
        .trimEnd();
    this.line(this.paint('bold', render(headers)));
    for (const row of rows) this.line(render(row));
  }

  /** "key: value" lines with the keys aligned. */
  fields(pairs: Array<[string, string]>): void {
    const width = Math.max(...pairs.map(([k]) => k.length));
    for (const [key, value] of pairs) this.line(`${`${key}:`.padEnd(width + 1)}  ${value}`);
  }

  status(text: string): string {
    const colour: Record<string, Colour> = {
      online: 'green',
      succeeded: 'green',
      ok: 'green',
      offline: 'red',
      failed: 'red',
      timeout: 'red',
      unwritable: 'red',
      pending: 'yellow',
      running: 'yellow',
    };
    return this.paint(colour[text], text);
  }
}

export function visibleLength(text: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching the escape codes is the point
  return text.replace(/\u001b\[[0-9;]*m/g, '').length;
}

/** 850 ms, 4.2 s, 3m05s, 2h10m */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** "12s ago", "never" */
export function formatAge(iso: string | null, now = Date.now()): string {
  if (!iso) return 'never';
  const ms = Math.max(0, now - Date.parse(iso));
  if (ms < 1000) return 'just now';
  if (ms < 60_000) return `${Math.floor(ms / 1000)}s ago`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m ago`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)}h ago`;
  return `${Math.floor(ms / 86_400_000)}d ago`;
}

/** "60s", "2m", "1m30s", "500ms", "1h", or a bare number of seconds; null when unreadable. */
export function parseDuration(text: string): number | null {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = text;
  while (rest !== '') {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!match) return null;
    total += Number(match[1]) * unit[match[2]!]!;
    rest = rest.slice(match[0].length);
  }
  return text === '' ? null : total;
}
