import type { InstanceRecord } from '../catalog/index.js';
import { FleetqlError } from '../errors.js';
import { instanceReadError, type InstanceAccess, type later } from '../instances/index.js';
import {
  decodeCursor,
  deleteRows,
  encodeCursor,
  exactRow,
  insertRow,
  needsExactRow,
  keyPredicates,
  keysetAfter,
  orderFingerprint,
  orderTerms,
  pageArgs,
  selectAggregate,
  selectByKeys,
  selectCount,
  selectGroups,
  selectRows,
  TableScope,
  updateRows,
  type AggregateLayout,
  type AggregateNeeds,
  type AggregateQuery,
  type BoolExp,
  type ColumnModel,
  type DataModel,
  type GroupsArgs,
  type ListArgs,
  type OnConflict,
  type OrderBy,
  type RelationshipModel,
  type SqlText,
  type TableModel,
} from '../query/index.js';
import { StorageError, type SqliteDatabase } from '../storage/index.js';

const indexes = new WeakMap<TableModel, Map<string, number>>();

/** One row of one instance: values in the table's row-column order, plus where it came from. */
export class Row {
  constructor(
    readonly instanceId: string,
    readonly version: number,
    readonly table: TableModel,
    readonly values: readonly unknown[],
  ) {}

  get(sqlName: string): unknown {
    let index = indexes.get(this.table);
    if (index === undefined) {
      const columns = this.table.rowidKey ? [...this.table.columns, ...this.table.key] : this.table.columns;
      index = new Map(columns.map((c, i) => [c.sql, i]));
      indexes.set(this.table, index);
    }
    return this.values[index.get(sqlName) ?? -1] ?? null;
  }
}

/** How complete an answer is: instances asked, answered, failed (1, 1, 0 inside one instance). */
export interface Coverage {
  readonly targeted: number;
  readonly answered: number;
  readonly failed: number;
}

export interface AggregateResult {
  readonly coverage?: Coverage;
  readonly layout: AggregateLayout;
  readonly values: readonly unknown[];
  /** count(columns, distinct) when they differ from count(*); runs its own statement (a fleet: its own fan-out). */
  count(columns: readonly ColumnModel[], distinct: boolean): Promise<CountAnswer>;
}

export interface CountAnswer {
  readonly value: number;
  /** Instances that failed to give their count (a fleet's fan-out); none inside one instance. */
  readonly failures: readonly FleetqlError[];
  /** Whether a failed instance may be left out (a fleet's `partial`); if not, a failure fails the field. */
  readonly partial: boolean;
}

export interface GroupResult {
  readonly coverage?: Coverage;
  readonly keys: readonly ColumnModel[];
  readonly keyValues: readonly unknown[];
  readonly aggregate: AggregateResult;
}

export interface Connection {
  coverage?: Coverage;
  edges: Array<{ cursor: string; node: Row }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export interface MutationResult {
  affected_rows: number;
  returning: Row[];
}

function translateWriteError(error: unknown): never {
  if (error instanceof StorageError && error.constraint) {
    const detail = /^(UNIQUE|NOT NULL|CHECK|FOREIGN KEY|PRIMARY KEY) constraint failed(?::\s*([\w.", ]+))?/i.exec(error.message);
    throw new FleetqlError('CONSTRAINT_VIOLATION', detail ? `${detail[1]} constraint failed${detail[2] ? `: ${detail[2]}` : ''}` : 'a constraint failed', { cause: error });
  }
  if (error instanceof StorageError && /datatype mismatch|too big|overflow/i.test(error.message)) {
    throw new FleetqlError('INVALID_ARGUMENT', 'a value does not fit its column', { cause: error });
  }
  throw error;
}

/** SQLite refusing a statement for its size becomes QUERY_TOO_COSTLY. */
function queryError(error: unknown): unknown {
  if (error instanceof StorageError && /parser stack overflow|too large|too many|too deep/i.test(error.message)) {
    return new FleetqlError('QUERY_TOO_COSTLY', 'the filter is nested too deeply for SQLite', { cause: error });
  }
  return error;
}

/** A fan-out's read of each instance of a selection (see DataService.selectionReader). */
export interface SelectionReader<T> {
  /** The instance's answer, its statements found, to run in this turn of the event loop; or `later`. */
  now(record: InstanceRecord): (() => T) | typeof later;
  /** The instance's answer read through the catalog, the handle opened if need be: now if no wait is needed, else a promise. */
  later(record: InstanceRecord): T | Promise<T>;
  /** What an error of an answer `now` gave is reported as (as `later` would report it). */
  failure(record: InstanceRecord, error: unknown): unknown;
}

const isIntegerOverflow = (error: unknown): boolean => error instanceof StorageError && /integer overflow/i.test(error.message);

/**
 * The rows of an aggregate select in its layout's shape, read by `read`. INTEGER sums are read as
 * plain sums; if one overflows 64 bits (SQLite fails the statement) or is not an integer, the rows
 * are read again with exact halves (see AggregateLayout.exactTerms).
 */
function readExactly(query: AggregateQuery, read: (text: SqlText) => unknown[][]): unknown[][] {
  const { exact, layout, offset } = query;
  if (exact === undefined) return read(query);
  try {
    const rows = read(query);
    if (!rows.some((row) => needsExactRow(layout, row, offset))) return rows;
  } catch (error) {
    if (!isIntegerOverflow(error)) throw error;
  }
  return read(exact).map((row) => exactRow(layout, row, offset));
}

/**
 * The one row of an aggregate select (no GROUP BY), read exactly (see readExactly) when the
 * returned function is called; its statement is found now (see SqliteDatabase.rowReader).
 */
export function aggregateRowReader(db: SqliteDatabase, query: AggregateQuery): () => unknown[] {
  const first = db.rowReader(query.sql);
  const read = (text: SqlText) => {
    const row = text === query ? first(text.params) : db.row(text.sql, text.params);
    return row === undefined ? [] : [row];
  };
  return () => readExactly(query, read)[0] ?? [];
}

/** The rows of a grouped aggregate select, read as aggregateRowReader reads its row. */
export function aggregateRowsReader(db: SqliteDatabase, query: AggregateQuery): () => unknown[][] {
  const first = db.rowsReader(query.sql);
  return () => readExactly(query, (text) => (text === query ? first(text.params) : db.rows(text.sql, text.params)));
}

/**
 * Runs the query plans of `src/query` on one instance through the instance service (so the handle
 * comes from the bounded cache and goes back), and turns raw rows into `Row`s.
 */
export class DataService {
  readonly model: DataModel;
  readonly #instances: InstanceAccess;
  /** One scope per table and schema version, so a fan-out can key its compiled statements by it. */
  readonly #scopes = new Map<TableModel, Map<number, TableScope>>();
  #lastScope: TableScope | undefined;

  /** `instances` is the requesting principal's view (ScopedInstances): it decides what may be read or written. */
  constructor(model: DataModel, instances: InstanceAccess) {
    this.model = model;
    this.#instances = instances;
  }

  /** The table as `record`'s instance has it (the scope a fan-out's reads of it use). */
  scopeOf(table: TableModel, record: InstanceRecord): TableScope {
    return this.#scope(table, record.schema_version);
  }

  /** The table as an instance at the head version has it (for layouts that need no instance). */
  scopeAtHead(table: TableModel): TableScope {
    return new TableScope(this.model, this.model.at(this.model.head), table);
  }

  table(sqlName: string): TableModel {
    const table = this.model.table(sqlName);
    if (table === undefined) throw new Error(`unknown table ${sqlName}`);
    return table;
  }

  /**
   * How a fan-out reads the table on each instance of a fleet's selection. `prepare` gets the
   * instance's handle and the table as that instance has it, finds its statements and returns the
   * instance's answer as a function that runs them. `now` does that on a warm handle at once (see
   * `InstanceAccess.readNow`) and leaves the answer to be run in this same turn of the event loop,
   * or gives `later`: then `later` reads the instance the async way. Made once per fan-out.
   */
  selectionReader<T>(table: TableModel, mark: number, prepare: (db: SqliteDatabase, scope: TableScope, record: InstanceRecord) => () => T): SelectionReader<T> {
    const ready = (db: SqliteDatabase, record: InstanceRecord) => this.#inScope(db, record, table, prepare);
    return {
      now: (record) => this.#instances.readNow(record, mark, ready),
      later: (record) =>
        this.#instances.withInstanceNow(record.id, (db, current) => {
          const answer = ready(db, current);
          try {
            return answer();
          } catch (error) {
            throw queryError(error);
          }
        }),
      failure: (record, error) => instanceReadError(record.id, queryError(error)),
    };
  }

  #scope(table: TableModel, version: number): TableScope {
    // A fan-out asks for the same scope instance after instance (a fleet at one version).
    const last = this.#lastScope;
    if (last !== undefined && last.model === table && last.schema.version === version) return last;
    let byVersion = this.#scopes.get(table);
    if (byVersion === undefined) this.#scopes.set(table, (byVersion = new Map()));
    let scope = byVersion.get(version);
    if (scope === undefined) byVersion.set(version, (scope = new TableScope(this.model, this.model.at(version), table)));
    this.#lastScope = scope;
    return scope;
  }

  #inScope<T>(db: SqliteDatabase, record: InstanceRecord, table: TableModel, fn: (db: SqliteDatabase, scope: TableScope, record: InstanceRecord) => T): T {
    try {
      return fn(db, this.#scope(table, record.schema_version), record);
    } catch (error) {
      throw queryError(error);
    }
  }

  #on<T>(instanceId: string, table: TableModel, fn: (db: SqliteDatabase, scope: TableScope) => T, write = false): Promise<T> {
    return this.#instances.withInstance(instanceId, (db, record) => this.#inScope(db, record, table, fn), { write });
  }

  #rows(db: SqliteDatabase, scope: TableScope, instanceId: string, query: SqlText): Row[] {
    if (!scope.exists) return [];
    return db.rows(query.sql, query.params).map((values) => new Row(instanceId, scope.schema.version, scope.model, values));
  }

  list(instanceId: string, table: TableModel, args: ListArgs): Promise<Row[]> {
    const page = pageArgs(args.limit, args.offset);
    return this.#on(instanceId, table, (db, scope) => this.#rows(db, scope, instanceId, selectRows(scope, args.where, args.order_by, page)));
  }

  byPk(instanceId: string, table: TableModel, key: Record<string, unknown>): Promise<Row | null> {
    return this.#on(instanceId, table, (db, scope) => this.#rows(db, scope, instanceId, selectRows(scope, null, null, { limit: 1, offset: 0 }, keyPredicates(scope, key)))[0] ?? null);
  }

  #aggregateResult(instanceId: string, table: TableModel, layout: AggregateLayout, values: readonly unknown[], where: BoolExp | null | undefined, extra?: (alias: string, params: unknown[]) => string[]): AggregateResult {
    return {
      layout,
      values,
      count: (columns, distinct) =>
        this.#on(instanceId, table, (db, scope) => {
          if (!scope.exists) return { value: 0, failures: [], partial: false };
          const query = selectCount(scope, where, columns, distinct, extra);
          return { value: Number(db.rows(query.sql, query.params)[0]?.[0] ?? 0), failures: [], partial: false };
        }),
    };
  }

  aggregate(instanceId: string, table: TableModel, where: BoolExp | null | undefined, needs?: AggregateNeeds): Promise<AggregateResult> {
    return this.#on(instanceId, table, (db, scope) => {
      const query = selectAggregate(scope, where, needs);
      const values = scope.exists ? aggregateRowReader(db, query)() : [0n];
      return this.#aggregateResult(instanceId, table, query.layout, values, where);
    });
  }

  groups(instanceId: string, table: TableModel, args: GroupsArgs): Promise<GroupResult[]> {
    return this.#on(instanceId, table, (db, scope) => {
      const query = selectGroups(scope, args, pageArgs(args.limit, 0).limit);
      if (!scope.exists) return [];
      return aggregateRowsReader(db, query)().map((row) => {
        const keyValues = row.slice(0, query.keys.length);
        const values = row.slice(query.keys.length);
        const match = (alias: string, params: unknown[]) =>
          query.keys.map((key, i) => {
            params.push(keyValues[i] ?? null);
            return `${scope.expr(alias, key)} IS ?`;
          });
        return { keys: query.keys, keyValues, aggregate: this.#aggregateResult(instanceId, table, query.layout, values, args.where, match) };
      });
    });
  }

  connection(instanceId: string, table: TableModel, args: { first?: number | null; after?: string | null; where?: BoolExp | null; order_by?: readonly OrderBy[] | null }): Promise<Connection> {
    const { limit: first } = pageArgs(args.first, 0, 'first');
    const terms = orderTerms(table, args.order_by);
    const fingerprint = orderFingerprint(JSON.stringify([table.sql, terms.map((t) => [t.column.sql, t.direction]), args.where ?? null], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
    const after = typeof args.after === 'string' ? decodeCursor(args.after, fingerprint, terms.length) : undefined;
    return this.#on(instanceId, table, (db, scope) => {
      const extra = after === undefined ? undefined : keysetAfter(scope, terms, after);
      const rows = this.#rows(db, scope, instanceId, selectRows(scope, args.where, args.order_by, { limit: first + 1, offset: 0 }, extra));
      const hasNextPage = rows.length > first;
      const page = rows.slice(0, first);
      const edges = page.map((node) => ({ cursor: encodeCursor(fingerprint, terms.map((t) => node.get(t.column.sql))), node }));
      return { edges, pageInfo: { hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
    });
  }

  /** Related rows for many parents of one instance at once: one statement per relationship and args. */
  related(instanceId: string, relationship: RelationshipModel, keyTuples: readonly (readonly unknown[])[], args: ListArgs): Promise<Map<string, Row[]>> {
    const target = this.table(relationship.target);
    return this.#on(instanceId, target, (db, scope) => {
      const byKey = new Map<string, Row[]>();
      if (!scope.exists || keyTuples.length === 0) return byKey;
      const columns = relationship.targetColumns.map((c) => target.column(c)!);
      const paged = relationship.kind === 'array';
      const query = selectByKeys(scope, columns, keyTuples, paged ? args : {}, paged);
      const width = scope.rowColumns.length;
      for (const raw of db.rows(query.sql, query.params)) {
        const key = tupleKey(raw.slice(0, columns.length));
        const row = new Row(instanceId, scope.schema.version, target, raw.slice(columns.length, columns.length + width));
        const list = byKey.get(key);
        if (list) list.push(row);
        else byKey.set(key, [row]);
      }
      return byKey;
    });
  }

  #write<T>(instanceId: string, table: TableModel, fn: (db: SqliteDatabase, scope: TableScope) => T): Promise<T> {
    return this.#on(instanceId, table, (db, scope) => {
      try {
        return db.transaction(() => fn(db, scope));
      } catch (error) {
        translateWriteError(error);
      }
    }, true);
  }

  insert(instanceId: string, table: TableModel, objects: readonly Record<string, unknown>[], onConflict: OnConflict | null | undefined): Promise<MutationResult> {
    if (objects.length > 1000) throw new FleetqlError('QUERY_TOO_COSTLY', 'insert at most 1,000 objects at a time');
    return this.#write(instanceId, table, (db, scope) => {
      const returning: Row[] = [];
      let affected = 0;
      for (const object of objects) {
        const query = insertRow(scope, object, onConflict);
        const rows = db.rows(query.sql, query.params);
        affected += rows.length;
        for (const values of rows) returning.push(new Row(instanceId, scope.schema.version, table, values));
      }
      return { affected_rows: affected, returning };
    });
  }

  update(instanceId: string, table: TableModel, where: BoolExp | null | undefined, set: Record<string, unknown> | null | undefined, inc: Record<string, unknown> | null | undefined, key?: Record<string, unknown>): Promise<MutationResult> {
    return this.#write(instanceId, table, (db, scope) => {
      const query = updateRows(scope, where, set, inc, key === undefined ? undefined : keyPredicates(scope, key));
      const returning = db.rows(query.sql, query.params).map((values) => new Row(instanceId, scope.schema.version, table, values));
      return { affected_rows: returning.length, returning };
    });
  }

  delete(instanceId: string, table: TableModel, where: BoolExp | null | undefined, key?: Record<string, unknown>): Promise<MutationResult> {
    return this.#write(instanceId, table, (db, scope) => {
      const query = deleteRows(scope, where, key === undefined ? undefined : keyPredicates(scope, key));
      const returning = db.rows(query.sql, query.params).map((values) => new Row(instanceId, scope.schema.version, table, values));
      return { affected_rows: returning.length, returning };
    });
  }
}

/** A map key for a tuple of SQLite values (bigint and text that look alike stay apart). */
export function tupleKey(values: readonly unknown[]): string {
  return JSON.stringify(values.map((v) => (typeof v === 'bigint' ? `n:${v}` : typeof v === 'number' ? (Number.isInteger(v) ? `n:${v}` : `f:${v}`) : v instanceof Uint8Array ? `x:${Buffer.from(v).toString('base64')}` : v)));
}
