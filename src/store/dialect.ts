/**
 * What differs between the databases the store runs on, and nothing else: how to connect and migrate, how a
 * write transaction takes its lock, how a value of each type is bound, selected and read back, and how many
 * rows go in at once. The store's semantics (state advance, rounds, history queries, retention) are written
 * once, in core.ts, against this interface.
 *
 * SQL handed to a dialect uses `?` placeholders, in order; a dialect that numbers its parameters ($1, $2, …)
 * numbers them itself. The core never puts a `?` inside a string literal.
 */

/**
 * The value types the core stores. `ms` is a time as ms since the epoch (SQLite: an integer; PostgreSQL:
 * timestamptz); `json` an object (SQLite: text; PostgreSQL: jsonb); `id` a generated row id.
 */
export type ValueType = 'text' | 'int' | 'real' | 'bool' | 'ms' | 'json' | 'id';

/** Columns of a table as the core names them, with their types (in the order they are written). */
export type Columns = Readonly<Record<string, ValueType>>;

/** One connection's worth of statements: inside a transaction, or standalone. */
export interface SqlConn {
  /** The rows of a query (also an INSERT … RETURNING). */
  all<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /** A statement without rows; resolves with how many rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

export interface Dialect {
  readonly kind: 'sqlite' | 'postgres';
  /** The file path, or the URL with its password hidden: safe to print. */
  readonly location: string;

  /** The placeholder for one value of this type, e.g. `?`, `to_timestamp(?::float8 / 1000)`, `?::jsonb`. */
  bind(type: ValueType): string;
  /** A column read back as the core's value, e.g. `ts`, `round(extract(epoch FROM ts) * 1000)::float8`. */
  select(type: ValueType, column: string): string;
  /** A value as the driver wants it bound (booleans as 0/1, objects as JSON text, …). */
  encode(type: ValueType, value: unknown): unknown;
  /** A value as the driver returned it, back to the core's type. */
  decode(type: ValueType, value: unknown): unknown;
  /** `column` is one of a list of texts: the SQL condition (one placeholder) and its parameter. */
  inList(column: string, values: readonly string[]): { sql: string; param: unknown };
  /** Appended to a SELECT whose rows this transaction will write: ` FOR UPDATE`, or '' where the lock is the database's. */
  readonly forUpdate: string;
  /** The column's name in this dialect's schema, where it differs from the core's (see the dialect's migrations). */
  column(table: string, name: string): string;

  /**
   * Write many rows in one go: PostgreSQL one INSERT … SELECT FROM unnest() per call, SQLite one prepared
   * statement run per row (in-process, already inside the transaction). `tail` follows the rows, e.g. an
   * ON CONFLICT clause. `rows` hold values in `columns`' order, not yet encoded.
   */
  insertMany(c: SqlConn, table: string, columns: Columns, rows: readonly (readonly unknown[])[], tail?: string): Promise<void>;

  /**
   * One write transaction holding the state lock of these VMs (SQLite: the whole file; PostgreSQL: an advisory
   * lock per VM, none for an empty list), with the lock wait bounded by the store's lock timeout. A lock that is
   * not had in time rejects with one sentence naming the store.
   */
  transaction<T>(vms: readonly string[], fn: (c: SqlConn) => Promise<T>): Promise<T>;
  /** Statements that each stand alone (reads, a single insert or update), outside any transaction. */
  session<T>(fn: (c: SqlConn) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** One step of a dialect's schema: version N moves the schema from N - 1 to N. Append only; never edit a released one. */
export interface Migration {
  version: number;
  /** What it adds, for people reading the list. */
  what: string;
  sql: string;
}

/**
 * The migrations still to apply to a schema at `current`, in order. A schema newer than this clonebox knows is
 * refused rather than guessed at. Each dialect runs them under its own lock, in one transaction.
 */
export function pendingMigrations(migrations: readonly Migration[], current: number): Migration[] {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`store migrations out of order: entry ${i} has version ${m.version}`);
  });
  if (current > migrations.length) {
    throw new Error(`schema version ${current} is newer than this clonebox understands (${migrations.length}); upgrade clonebox`);
  }
  return migrations.slice(current);
}
