/**
 * Values from outside the config (domain names, addresses, guest output) are shown to people in
 * tables, one-line logs and Nagios lines. A name holding a line break could forge a line of its own,
 * an escape sequence could repaint the terminal, and a bidi override could make `evil‮txt.exe`
 * read backwards. `printable()` shows such characters as visible escapes; everything else is kept.
 */

// C0 controls, DEL, C1 controls, bidi embeddings/overrides/isolates and marks, line/paragraph
// separators, and the zero-width no-break space (BOM).
const UNSAFE_CLASS = '[\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069\\ufeff]';
const UNSAFE_ALL = new RegExp(UNSAFE_CLASS, 'g');
const UNSAFE_ANY = new RegExp(UNSAFE_CLASS);
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escape(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` with control characters, line breaks and bidi controls shown as `\n`, `\x1b`, `\u202e`. */
export function printable(text: string): string {
  return UNSAFE_ANY.test(text) ? text.replace(UNSAFE_ALL, escape) : text;
}

/** True when `printable(text)` would change it. */
export function needsEscaping(text: string): boolean {
  return UNSAFE_ANY.test(text);
}
