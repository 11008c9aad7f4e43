import { describe, expect, it } from 'vitest';
import { ECHO_MAX_CHARS, clip, echo, isPrintable } from './echo.ts';

describe('echo', () => {
  it.each([
    ['crossdock', '"crossdock"'],
    ['', '""'],
    ['a "quoted" \\ word', '"a \\"quoted\\" \\\\ word"'],
    ['line\nbreak\ttab\u0007bell', '"line\\nbreak\\ttab\\u0007bell"'],
    ['next\u0085line', '"next\\u0085line"'],
    ['exe.\u202egnp', '"exe.\\u202egnp"'],
    ['zero\u200bwidth', '"zero\\u200bwidth"'],
    ['line\u2028separator', '"line\\u2028separator"'],
    ['\ufeffbom', '"\\ufeffbom"'],
    ['lone \ud800 surrogate', '"lone \\ud800 surrogate"'],
    ['tag \u{e0041} character', '"tag \\udb40\\udc41 character"'],
    ['Ünïcödé 東京 ✓ 😀', '"Ünïcödé 東京 ✓ 😀"'],
  ])('%j', (text, quoted) => expect(echo(text)).toBe(quoted));

  it('cuts long input to a prefix and says how long it was', () => {
    expect(echo('x'.repeat(1_000_000))).toBe(`"${'x'.repeat(ECHO_MAX_CHARS)}…" (1000000 characters)`);
    expect(echo('x'.repeat(ECHO_MAX_CHARS))).toBe(`"${'x'.repeat(ECHO_MAX_CHARS)}"`);
  });

  it('does not cut a character in half', () => {
    const text = `${'x'.repeat(ECHO_MAX_CHARS - 1)}😀😀`;
    expect(echo(text)).toBe(`"${'x'.repeat(ECHO_MAX_CHARS - 1)}…" (${text.length} characters)`);
  });

  it('never gives more than a short line, whatever the input', () => {
    const invisible = '\u202e'.repeat(10_000);
    expect(echo(invisible).length).toBeLessThan(ECHO_MAX_CHARS * 6 + 40);
    expect(echo(invisible)).not.toMatch(/[\u202e]/);
  });
});

describe('clip', () => {
  it('escapes invisible characters and cuts, unquoted', () => {
    expect(clip('labels/a\u202eb', 100)).toBe('labels/a\\u202eb');
    expect(clip('abcdef', 3)).toBe('abc…');
  });
});

describe('isPrintable', () => {
  it.each(['', 'plain', 'a b', 'Ünïcödé 東京 ✓ 😀', '\u00a0no-break space'])('accepts %j', (text) => expect(isPrintable(text)).toBe(true));
  it.each(['a\nb', 'a\u0000b', 'a\u007fb', 'a\u0085b', 'a\u202eb', 'a\u200bb', 'a\u2028b', 'a\u2029b', '\ufeff', 'a\ud800b', 'a\ue000b'])(
    'refuses %j',
    (text) => expect(isPrintable(text)).toBe(false),
  );
});
