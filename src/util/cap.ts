/** Keep at most `limit` characters of a text, saying how much was cut. */
export const DETAIL_CAP_BYTES = 4096;

export function capText(text: string, limit = DETAIL_CAP_BYTES): string {
  if (text.length <= limit) return text;
  return `${text.slice(0, limit)}… [${text.length - limit} more characters cut]`;
}

/** Shell-quote one word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
