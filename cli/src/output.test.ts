import { describe, expect, it } from 'vitest';
import { Output, colourWanted, formatDuration, parseDuration, visibleLength } from './output.ts';

describe('durations', () => {
  it.each([
    ['60s', 60_000],
    ['2m', 120_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['1h', 3_600_000],
    ['1.5s', 1_500],
    ['90', 90_000],
  ])('reads %s', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', 'soon', '10x', 's', '-5s', '1m 30s'])('refuses %j', (text) => expect(parseDuration(text)).toBeNull());

  it.each([
    [850, '850 ms'],
    [4_240, '4.2 s'],
    [185_000, '3m05s'],
    [7_800_000, '2h10m'],
  ])('writes %d ms as %s', (ms, text) => expect(formatDuration(ms)).toBe(text));
});

describe('Output', () => {
  it('aligns columns by visible width, colour codes not counted', () => {
    const lines: string[] = [];
    const out = new Output(true, { write: (t: string) => lines.push(t) });
    out.table(
      ['NAME', 'STATUS', 'X'],
      [
        ['a', out.status('online'), '1'],
        ['longer-name', out.status('pending'), '2'],
      ],
    );
    // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping the escape codes is the point
    const plain = lines.map((l) => l.replace(/\u001b\[[0-9;]*m/g, ''));
    expect(plain).toEqual(['NAME         STATUS   X\n', 'a            online   1\n', 'longer-name  pending  2\n']);
    expect(lines[1]).toContain('\u001b[32monline\u001b[0m');
    expect(visibleLength(out.paint('red', 'abc'))).toBe(3);
  });

  it('paints nothing without colour', () => {
    expect(new Output(false).paint('red', 'x')).toBe('x');
  });

  it('wants colour only on a terminal without NO_COLOR', () => {
    expect(colourWanted({ isTTY: true }, {})).toBe(true);
    expect(colourWanted({ isTTY: false }, {})).toBe(false);
    expect(colourWanted({}, {})).toBe(false);
    expect(colourWanted({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colourWanted({ isTTY: true }, { NO_COLOR: '' })).toBe(true);
    expect(colourWanted({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
  });
});
