/**
 * Server-rendered HTML that is escaped by construction: the `html` tag escapes every interpolated value unless it
 * is already `Html` (made by this tag, or by `trusted` for the page's own constants). Names, messages and
 * everything else from the store therefore render as text: a VM called `<script>` is shown, never run.
 * Values go in element text or in double-quoted attributes only; both are safe with the five escapes below.
 */

export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

const SPECIAL = /[&<>"']/;

export function escapeHtml(text: string): string {
  // Most names and messages need nothing: skip the replace (the fleet page escapes ~20 000 values).
  return SPECIAL.test(text) ? text.replace(/[&<>"']/g, (c) => ESCAPES[c]!) : text;
}

/** What an interpolated value renders as: Html as is, arrays item by item, nothing for null/undefined/false. */
function render(value: unknown): string {
  if (value instanceof Html) return value.value;
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** The page's own constant markup (stylesheet, script): never pass anything that came from a request or the store. */
export function trusted(markup: string): Html {
  return new Html(markup);
}

/** A path segment for a link: `/vms/${seg(vm)}`. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}
