/** SQL built from a table's columns (dialect.ts), in the dialect's syntax: shared by core.ts and alert-queries.ts. */
import type { Columns, Dialect } from './dialect.js';

export type Row<C extends Columns> = { [K in keyof C]: unknown };

export const names = (d: Dialect, table: string, cols: Columns) => Object.keys(cols).map((k) => d.column(table, k));

export function selectList(d: Dialect, table: string, cols: Columns): string {
  return Object.entries(cols)
    .map(([k, type]) => `${d.select(type, d.column(table, k))} AS ${k}`)
    .join(', ');
}

export function decodeRow<C extends Columns>(d: Dialect, cols: C, r: Record<string, unknown>): Row<C> {
  const out: Record<string, unknown> = {};
  for (const [k, type] of Object.entries(cols)) out[k] = r[k] === null || r[k] === undefined ? null : d.decode(type, r[k]);
  return out as Row<C>;
}

/** `ON CONFLICT (keys) DO UPDATE SET` every other column: the same words in SQLite (≥ 3.24) and PostgreSQL. */
export function upsertTail(d: Dialect, table: string, cols: Columns, keys: readonly string[]): string {
  const set = Object.keys(cols)
    .filter((k) => !keys.includes(k))
    .map((k) => `${d.column(table, k)} = excluded.${d.column(table, k)}`);
  return `ON CONFLICT (${keys.map((k) => d.column(table, k)).join(', ')}) DO UPDATE SET ${set.join(', ')}`;
}

