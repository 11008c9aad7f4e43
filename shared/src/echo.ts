// Quoting input back in a message. A message names what was wrong, so it repeats some of what
// was sent; repeating all of it would turn a 1 MB field into a 1 MB error, and an invisible or
// reordering character (U+202E, U+200B, U+2028) would make the message lie about the input.

/** Enough of a value to recognise it in a message. */
export const ECHO_MAX_CHARS = 64;

// Control, format, surrogate, private-use and unassigned code points, and the line and
// paragraph separators: none shows as itself.
const INVISIBLE = /[\p{C}\p{Zl}\p{Zp}]/u;
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, 'gu');

/**
 * `text` as a message quotes it: in double quotes, JSON-escaped, with every invisible character
 * written as a \u escape, and cut to ECHO_MAX_CHARS characters ("…" and the full length after).
 */
export function echo(text: string): string {
  const head = cut(text, ECHO_MAX_CHARS);
  const quoted = JSON.stringify(head).replace(INVISIBLE_ALL, escapeUnits);
  return head.length < text.length ? `${quoted.slice(0, -1)}…" (${text.length} characters)` : quoted;
}

/**
 * Text that is mostly ours but may carry input (a field path holding a key, a parser's message
 * quoting the body), unquoted: invisible characters as \u escapes, cut to `max` characters.
 */
export function clip(text: string, max: number): string {
  const head = cut(text, max);
  return head.replace(INVISIBLE_ALL, escapeUnits) + (head.length < text.length ? '…' : '');
}

/** True when every character of `text` shows as itself: no control or format characters. */
export function isPrintable(text: string): boolean {
  return !INVISIBLE.test(text);
}

/** The first `max` UTF-16 units, not cutting a character in half. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const head = text.slice(0, max);
  return /[\ud800-\udbff]$/.test(head) ? head.slice(0, -1) : head;
}

function escapeUnits(char: string): string {
  let out = '';
  for (let i = 0; i < char.length; i++) out += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}
