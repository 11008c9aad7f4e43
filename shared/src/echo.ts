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
  let head = text.length > ECHO_MAX_CHARS ? text.slice(0, ECHO_MAX_CHARS) : text;
  // Do not cut a character in half: drop a high surrogate whose pair was cut off.
  if (head.length < text.length && /[\ud800-\udbff]$/.test(head)) head = head.slice(0, -1);
  const quoted = JSON.stringify(head).replace(INVISIBLE_ALL, escapeUnits);
  return head.length < text.length ? `${quoted.slice(0, -1)}…" (${text.length} characters)` : quoted;
}

function escapeUnits(char: string): string {
  let out = '';
  for (let i = 0; i < char.length; i++) out += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/** True when every character of `text` shows as itself: no control or format characters. */
export function isPrintable(text: string): boolean {
  return !INVISIBLE.test(text);
}
