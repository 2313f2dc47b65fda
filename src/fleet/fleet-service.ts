import { setImmediate as nextTurn } from 'node:timers/promises';
import type { InstanceFilter, InstanceQuery, InstanceRecord } from '../catalog/index.js';
import { aggregateRowReader, aggregateRowsReader, Row, tupleKey, type AggregateResult, type Connection, type CountAnswer, type Coverage, type DataService, type GroupResult } from '../data/index.js';
import { FleetqlError } from '../errors.js';
import { later, type PreparedReadsAccess, type Selection } from '../instances/index.js';
import type { SqliteDatabase } from '../storage/index.js';
import {
  AggregateMerge,
  compareDirected,
  compareSqlValues,
  decodeCursor,
  encodeCursor,
  groupingKeys,
  inlineLiterals,
  keysetAfter,
  keysetBefore,
  orderFingerprint,
  orderTerms,
  pageArgs,
  selectAggregate,
  selectCount,
  selectDistinct,
  selectGroups,
  selectRows,
  TopK,
  type AggregateLayout,
  type AggregateNeeds,
  type BoolExp,
  type ColumnModel,
  type GroupsArgs,
  type ListArgs,
  type OrderBy,
  type OrderTerm,
  type SqlText,
  type TableModel,
  type TableScope,
} from '../query/index.js';
import { fanOut, type FanOutOptions, type FanOutTask } from './fan-out.js';
import type { RecentQuestions } from './recent-questions.js';

/** Limits and defaults of fleet queries (documented in config). */
export interface FleetLimits {
  concurrencyDefault: number;
  concurrencyMax: number;
  instanceTimeoutMs: number;
  deadlineMs: number;
  /** Most instances × fleet fields one fleet selection may fan out to. */
  maxCost: number;
  /** Catalog records listed per statement when a fleet query selects its instances (default 1,000). */
  selectPage?: number;
}

/** The kinds of fleet field, each one fan-out (an aggregate's count is a fan-out of its own). */
export type FleetFieldKind = 'list' | 'aggregate' | 'count' | 'groups' | 'connection';

/** Told after every fan-out (metrics); must be cheap and must not throw. */
export interface FanOutObserver {
  fanOutDone(report: { field: FleetFieldKind; targets: number; durationMs: number; failureCodes: readonly string[] }): void;
}

/** The instances a `fleet(...)` field selected, and how to fan out over them. */
export interface FleetScope {
  readonly targets: readonly string[];
  /** The targets' catalog records as selected (a read's snapshot; see `InstanceAccess.readNow`). */
  readonly selection: Selection;
  readonly partial: boolean;
  readonly options: Omit<FanOutOptions, 'deadline'> & { deadlineMs: number };
}

/** A fleet answer: the merged value, how complete it is, and one error per instance that failed. */
export interface FleetAnswer<T> {
  value: T;
  coverage: Coverage;
  failures: FleetqlError[];
}

export interface FleetSelectArgs {
  where?: InstanceFilter | null | undefined;
  partial?: boolean | null | undefined;
  concurrency?: number | null | undefined;
  timeout_ms?: number | null | undefined;
}

/** How long listing the selection may hold the event loop before it lets other requests run. */
const selectSliceMs = 4;

/** States whose instances a fleet query asks; a quarantined one answers with its error. */
const fannedStates = ['ACTIVE', 'QUARANTINED'];

type Extra = (alias: string, params: unknown[]) => string[];

/** One plan per table scope (schema version) for a whole fan-out: built once, same SQL text, so each handle's cached statement is found at once. */
function perScope<Q>(build: (scope: TableScope) => Q): (scope: TableScope) => Q {
  const plans = new Map<TableScope, Q>();
  let lastScope: TableScope | undefined;
  let lastPlan: Q | undefined;
  return (scope) => {
    if (scope === lastScope) return lastPlan!;
    let plan = plans.get(scope);
    if (plan === undefined) plans.set(scope, (plan = build(scope)));
    lastScope = scope;
    lastPlan = plan;
    return plan;
  };
}

/** What fleet queries need of the principal's view of the instances (ScopedInstances). */
interface FleetInstances {
  select(query: InstanceQuery): Selection;
  readonly prepared?: PreparedReadsAccess | undefined;
}

/** A fleet question as its prepared reads are kept by (see InstanceService.keepPreparedReads). */
function questionKey(field: FleetFieldKind, table: TableModel, query: SqlText): string {
  return `${field}\u0000${table.sql}\u0000${query.sql}\u0000${JSON.stringify(query.params, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value))}`;
}

function both(a: Extra | undefined, b: Extra | undefined): Extra | undefined {
  if (a === undefined || b === undefined) return a ?? b;
  return (alias, params) => [...a(alias, params), ...b(alias, params)];
}

/**
 * Fleet queries: the catalog prunes the fleet to the instances the filter selects (no other file is
 * opened), the per-instance plan of `src/query` runs on each through a bounded fan-out, and the
 * partial results merge exactly as one database holding every instance's rows would answer
 * (ordering ties broken by instance id, then key).
 */
export class FleetService {
  readonly #data: DataService;
  readonly #instances: FleetInstances;
  readonly #limits: FleetLimits;
  readonly #observer: FanOutObserver | undefined;
  readonly #recent: RecentQuestions | undefined;

  /**
   * `instances` is the requesting principal's view: its scope joins the catalog filter, so pruning
   * still applies. `recent` is the process's memory of fleet statements: one asked again runs with
   * its parameters inlined (without it, none is).
   */
  constructor(data: DataService, instances: FleetInstances, limits: FleetLimits, observer?: FanOutObserver, recent?: RecentQuestions) {
    this.#data = data;
    this.#instances = instances;
    this.#limits = limits;
    this.#observer = observer;
    this.#recent = recent;
  }

  /** The statement, with its parameters inlined if the fleet asked it recently (see RecentQuestions). */
  #asked<Q extends SqlText & { exact?: SqlText | undefined }>(query: Q): Q {
    if (this.#recent === undefined || !this.#recent.askedBefore(query.sql, query.params)) return query;
    return { ...query, ...inlineLiterals(query), ...(query.exact === undefined ? {} : { exact: inlineLiterals(query.exact) }) };
  }

  /**
   * Picks the targets from the catalog alone and checks the cost (targets × `fields`, the fleet
   * fields the query selects) before any instance is opened.
   */
  async select(args: FleetSelectArgs, fields: number): Promise<FleetScope> {
    const concurrency = args.concurrency ?? this.#limits.concurrencyDefault;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > this.#limits.concurrencyMax) {
      throw new FleetqlError('INVALID_ARGUMENT', `concurrency must be from 1 to ${this.#limits.concurrencyMax}`);
    }
    const timeout = args.timeout_ms ?? Math.min(this.#limits.instanceTimeoutMs, this.#limits.deadlineMs);
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > this.#limits.deadlineMs) {
      throw new FleetqlError('INVALID_ARGUMENT', `timeout_ms must be from 1 to ${this.#limits.deadlineMs} (the fleet deadline)`);
    }
    const where: InstanceFilter = { _and: [...(args.where ? [args.where] : []), { state: { _in: fannedStates } }] };
    const selection = await this.#selectInPages(where);
    const targets = selection.records.map((record) => record.id);
    const cost = targets.length * fields;
    if (cost > this.#limits.maxCost) {
      throw new FleetqlError('QUERY_TOO_COSTLY', `this fleet query would ask ${targets.length} instances for ${fields} field(s) (cost ${cost}), more than the limit ${this.#limits.maxCost}: narrow the instance filter`, {
        extensions: { cost, limit: this.#limits.maxCost, instances: targets.length },
      });
    }
    return Object.freeze({ targets, selection, partial: args.partial ?? true, options: { concurrency, instanceTimeoutMs: timeout, deadlineMs: this.#limits.deadlineMs } });
  }

  /**
   * The catalog listing in pages by id, the event loop let go between pages once it has been held
   * a few milliseconds: listing 10,000 records in one statement holds it for 40–100 ms (the driver
   * builds every row), longer than a fan-out slice; pages the catalog kept cost nothing. The mark
   * is the first page's, taken before any record is read.
   */
  async #selectInPages(where: InstanceFilter): Promise<Selection> {
    const selectPage = this.#limits.selectPage ?? 1000;
    let first: Selection | undefined;
    const records: InstanceRecord[] = [];
    let held = performance.now();
    for (;;) {
      const after = records.at(-1)?.id;
      const page = this.#instances.select({ where: after === undefined ? where : { _and: [where, { id: { _gt: after } }] }, orderBy: [{ id: 'asc' }], limit: selectPage });
      first ??= page;
      for (const record of page.records) records.push(record);
      if (page.records.length < selectPage) break;
      if (performance.now() - held > selectSliceMs) {
        await nextTurn();
        held = performance.now();
      }
    }
    return { records, mark: first.mark };
  }

  /**
   * Asks every target: `prepare` gets its handle with the table as that instance has it, finds its
   * statements and returns its answer as a function that runs them (see `fanOut`: a batch of warm
   * instances is prepared, then run). `onAnswer` folds each answer that counts as it comes, so
   * nothing is kept per instance.
   */
  async #run<T>(
    scope: FleetScope,
    field: FleetFieldKind,
    table: TableModel,
    prepare: (db: SqliteDatabase, s: TableScope, instanceId: string) => () => T,
    onAnswer: (value: T) => void,
    question?: string,
  ): Promise<{ coverage: Coverage; failures: FleetqlError[] }> {
    const started = performance.now();
    const { records, mark } = scope.selection;
    const { targets } = scope;
    const read = this.#data.selectionReader(table, mark, (db, s, record) => prepare(db, s, record.id));
    // A question asked again over the same selection, no handle closed since, takes each
    // instance's read as the last asking prepared it (see InstanceService.keepPreparedReads).
    const prepared = question === undefined ? undefined : this.#instances.prepared;
    const generation = prepared?.generation;
    const kept = prepared?.get(question!, records);
    const keeping: Array<(() => T) | undefined> | undefined = prepared !== undefined && kept === undefined ? new Array<(() => T) | undefined>(records.length) : undefined;
    let reused = 0;
    const task: FanOutTask<T> = {
      prepare: (index) => {
        if (kept !== undefined && !kept.generation.ended) {
          const ready = kept.reads[index] as (() => T) | undefined;
          if (ready !== undefined) {
            reused += 1;
            return ready;
          }
        }
        const answer = read.now(records[index]!);
        if (answer === later) return undefined;
        if (keeping !== undefined) keeping[index] = answer;
        return answer;
      },
      slow: (index) => read.later(records[index]!),
      failure: (index, error) => read.failure(records[index]!, error),
    };
    const { answered, failures } = await fanOut(targets, { ...scope.options, deadline: performance.now() + scope.options.deadlineMs }, task, onAnswer);
    if (keeping !== undefined) prepared!.keep(question!, records, keeping, generation!);
    if (reused > 0) prepared!.countHits(reused);
    this.#observer?.fanOutDone({ field, targets: targets.length, durationMs: performance.now() - started, failureCodes: failures.map((failure) => failure.code) });
    return { failures, coverage: { targeted: targets.length, answered, failed: failures.length } };
  }

  /**
   * The question's key for its prepared reads, from its plan for the first target's scope;
   * undefined without targets, or when that plan cannot be made (each instance then reports the
   * error, as it did before prepared reads).
   */
  #question<Q extends SqlText>(scope: FleetScope, field: FleetFieldKind, table: TableModel, plan: (s: TableScope) => Q): { key: string; query: Q } | undefined {
    const first = scope.selection.records[0];
    if (first === undefined) return undefined;
    try {
      const query = plan(this.#data.scopeOf(table, first));
      return { key: questionKey(field, table, query), query };
    } catch {
      return undefined;
    }
  }

  /** The fleet order: the requested terms, then instance id, then the key (as one shared table would sort). */
  #rowOrder(table: TableModel, orderBy: readonly OrderBy[] | null | undefined): { terms: OrderTerm[]; userCount: number; compare: (a: Row, b: Row) => number } {
    const terms = orderTerms(table, orderBy);
    const userCount = orderBy?.length ?? 0;
    const compare = (a: Row, b: Row): number => {
      for (let i = 0; i < userCount; i++) {
        const term = terms[i]!;
        const order = compareDirected(a.get(term.column.sql), b.get(term.column.sql), term.direction);
        if (order !== 0) return order;
      }
      if (a.instanceId !== b.instanceId) return a.instanceId < b.instanceId ? -1 : 1;
      for (let i = userCount; i < terms.length; i++) {
        const order = compareSqlValues(a.get(terms[i]!.column.sql), b.get(terms[i]!.column.sql));
        if (order !== 0) return order;
      }
      return 0;
    };
    return { terms, userCount, compare };
  }

  /**
   * The first `k` rows of the fleet in the fleet order, each instance asked for at most `k` rows
   * already in that order (after `extra`, a connection's cursor). Once `k` rows are kept, the k-th
   * is pushed down as a bound: an instance read later returns only rows that sort before it, the
   * only ones that can still enter. Before it on the requested terms; on equal terms the instance
   * id decides (an instance whose id sorts first comes first), so an instance before the bound's
   * takes ties too (`orEqual`). Any kept k-th row is a sound bound: the kept rows only get better.
   */
  async #top(scope: FleetScope, field: 'list' | 'connection', table: TableModel, args: { where?: BoolExp | null | undefined; order_by?: readonly OrderBy[] | null | undefined }, k: number, extra?: (s: TableScope, id: string) => Extra | undefined) {
    const { terms, userCount, compare } = this.#rowOrder(table, args.order_by);
    const top = new TopK<Row>(k, compare);
    const userTerms = terms.slice(0, userCount);
    // The last plan per scope, reused while the bound and the side of it stay the same.
    const plans = new Map<TableScope, { bound: Row | undefined; side: number; query: SqlText }>();
    const run = await this.#run(
      scope,
      field,
      table,
      // The plan depends on the bound so far: found when the instance answers.
      (db, s, id) => () => {
        if (!s.exists || k === 0) return [];
        const bound = top.items.length === k ? top.items[k - 1] : undefined;
        const side = bound === undefined ? 0 : id === bound.instanceId ? 1 : id < bound.instanceId ? 2 : 3;
        let plan = plans.get(s);
        if (plan === undefined || plan.bound !== bound || plan.side !== side || extra !== undefined) {
          let before: Extra | undefined;
          if (bound !== undefined) {
            before = side === 1 ? keysetBefore(s, terms, terms.map((t) => bound.get(t.column.sql))) : keysetBefore(s, userTerms, userTerms.map((t) => bound.get(t.column.sql)), side === 2);
          }
          plan = { bound, side, query: selectRows(s, args.where, args.order_by, { limit: k, offset: 0 }, both(extra?.(s, id), before)) };
          plans.set(s, plan);
        }
        const { sql, params } = plan.query;
        // Under a bound most instances have no row left to add: one `get` tells that, several
        // times cheaper in the driver than building a row iterator (bench item 2).
        if (bound !== undefined && db.row(sql, params) === undefined) return [];
        return db.rows(sql, params).map((values) => new Row(id, s.schema.version, table, values));
      },
      (rows) => {
        if (rows.length > 0) top.add(rows);
      },
    );
    return { rows: top.items, terms, userCount, run };
  }

  async list(scope: FleetScope, table: TableModel, args: ListArgs): Promise<FleetAnswer<Row[]>> {
    const { limit, offset } = pageArgs(args.limit, args.offset);
    const { rows, run } = await this.#top(scope, 'list', table, args, offset + limit);
    return { value: rows.slice(offset), coverage: run.coverage, failures: run.failures };
  }

  /**
   * count(columns, distinct) over the fleet, a fan-out of its own: its failures are its own too
   * (an instance may answer the aggregate and time out here). Distinct tuples are added to the
   * fleet's set only once an instance's answer counts, so a timed-out instance adds none.
   */
  #fleetCount(scope: FleetScope, table: TableModel, where: BoolExp | null | undefined, extra?: (s: TableScope) => Extra) {
    return async (columns: readonly ColumnModel[], distinct: boolean): Promise<CountAnswer> => {
      if (!distinct || columns.length === 0) {
        const plan = perScope((s) => this.#asked(selectCount(s, where, columns, false, extra?.(s))));
        let total = 0n;
        const { failures } = await this.#run(
          scope,
          'count',
          table,
          (db, s) => {
            if (!s.exists) return () => 0n;
            const query = plan(s);
            const read = db.rowReader(query.sql);
            return () => BigInt(read(query.params)?.[0] as bigint);
          },
          (count) => (total += count),
          this.#question(scope, 'count', table, plan)?.key,
        );
        return { value: Number(total), failures, partial: scope.partial };
      }
      const seen = new Set<string>();
      const plan = perScope((s) => this.#asked(selectDistinct(s, where, columns, extra?.(s))));
      const { failures } = await this.#run(
        scope,
        'count',
        table,
        (db, s) => {
          if (!s.exists) return () => [];
          const query = plan(s);
          const read = db.rowsReader(query.sql);
          return () => read(query.params).map((tuple) => tupleKey(tuple));
        },
        (keys) => {
          for (const key of keys) seen.add(key);
        },
        this.#question(scope, 'count', table, plan)?.key,
      );
      return { value: seen.size, failures, partial: scope.partial };
    };
  }

  async aggregate(scope: FleetScope, table: TableModel, where: BoolExp | null | undefined, needs?: AggregateNeeds): Promise<FleetAnswer<AggregateResult>> {
    let layout: AggregateLayout | undefined;
    let merge: AggregateMerge | undefined;
    const plan = perScope((s) => this.#asked(selectAggregate(s, where, needs)));
    const question = this.#question(scope, 'aggregate', table, plan);
    // Prepared reads kept from an earlier asking do not run `prepare` below: the layout comes from the plan.
    layout = question?.query.layout;
    const run = await this.#run(
      scope,
      'aggregate',
      table,
      (db, s) => {
        const query = plan(s);
        layout = query.layout;
        if (!s.exists) return () => query.layout.kinds.map(({ kind }) => (kind === 'count' || kind === 'count_col' ? 0n : null));
        return aggregateRowReader(db, query);
      },
      (row) => (merge ??= new AggregateMerge(layout!)).add(row),
      question?.key,
    );
    layout ??= this.#emptyLayout(table, needs);
    const coverage = run.coverage;
    const value: AggregateResult = {
      layout,
      values: (merge ?? new AggregateMerge(layout)).result(),
      count: this.#fleetCount(scope, table, where),
      coverage,
    };
    return { value, coverage, failures: run.failures };
  }

  /** The layout without any instance (every one failed, or none was targeted). */
  #emptyLayout(table: TableModel, needs?: AggregateNeeds): AggregateLayout {
    return selectAggregate(this.#data.scopeAtHead(table), null, needs).layout;
  }

  async groups(scope: FleetScope, table: TableModel, args: GroupsArgs): Promise<FleetAnswer<GroupResult[]>> {
    const keys = groupingKeys(table, args.grouping_keys);
    const { limit } = pageArgs(args.limit, 0);
    let layout: AggregateLayout = this.#emptyLayout(table);
    // Every group of every instance (no per-instance limit): order and limit apply after merging.
    const plan = perScope((s) => this.#asked(selectGroups(s, { grouping_keys: args.grouping_keys, where: args.where ?? null }, null)));
    const merged = new Map<string, { keyValues: unknown[]; merge: AggregateMerge }>();
    const question = this.#question(scope, 'groups', table, plan);
    if (question !== undefined) layout = question.query.layout;
    const run = await this.#run(
      scope,
      'groups',
      table,
      (db, s) => {
        const query = plan(s);
        layout = query.layout;
        return s.exists ? aggregateRowsReader(db, query) : () => [];
      },
      (rows) => {
        for (const row of rows) {
          const keyValues = row.slice(0, keys.length);
          const key = tupleKey(keyValues);
          let group = merged.get(key);
          if (group === undefined) merged.set(key, (group = { keyValues, merge: new AggregateMerge(layout) }));
          group.merge.add(row.slice(keys.length));
        }
      },
      question?.key,
    );
    const countIndex = layout.index.get('count')!;
    const groups = [...merged.values()].map((g) => ({ keyValues: g.keyValues, values: g.merge.result() }));
    const order: Array<(a: (typeof groups)[number], b: (typeof groups)[number]) => number> = [];
    for (const element of args.order_by ?? []) {
      const entries = Object.entries(element).filter(([, d]) => d !== undefined && d !== null);
      if (entries.length !== 1) throw new FleetqlError('INVALID_ARGUMENT', 'each order_by element must name exactly one column');
      const [field, direction] = entries[0]!;
      if (field === '_count') order.push((a, b) => compareDirected(a.values[countIndex], b.values[countIndex], direction!));
      else {
        const index = keys.findIndex((k) => k.field === field);
        if (index < 0) throw new FleetqlError('INVALID_ARGUMENT', `groups can be ordered only by grouping keys or _count, not ${field}`);
        order.push((a, b) => compareDirected(a.keyValues[index], b.keyValues[index], direction!));
      }
    }
    keys.forEach((_, index) => order.push((a, b) => compareDirected(a.keyValues[index], b.keyValues[index], 'asc')));
    groups.sort((a, b) => {
      for (const compare of order) {
        const result = compare(a, b);
        if (result !== 0) return result;
      }
      return 0;
    });
    const coverage = run.coverage;
    const value = groups.slice(0, limit).map(
      (g): GroupResult => ({
        keys,
        keyValues: g.keyValues,
        coverage,
        aggregate: {
          layout,
          values: g.values,
          coverage,
          count: this.#fleetCount(scope, table, args.where, (s) => (alias, params) =>
            keys.map((key, i) => {
              params.push(g.keyValues[i] ?? null);
              return `${s.expr(alias, key)} IS ?`;
            }),
          ),
        },
      }),
    );
    return { value, coverage, failures: run.failures };
  }

  async connection(scope: FleetScope, table: TableModel, args: { first?: number | null; after?: string | null; where?: BoolExp | null; order_by?: readonly OrderBy[] | null }): Promise<FleetAnswer<Connection>> {
    const { limit: first } = pageArgs(args.first, 0, 'first');
    const terms = orderTerms(table, args.order_by);
    const userCount = args.order_by?.length ?? 0;
    const fingerprint = orderFingerprint(JSON.stringify(['fleet', table.sql, terms.map((t) => [t.column.sql, t.direction]), args.where ?? null], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
    // A fleet cursor is (requested terms…, instance id, key…): the position in the merged order.
    const position = typeof args.after === 'string' ? decodeCursor(args.after, fingerprint, terms.length + 1) : undefined;
    const cursorInstance = position === undefined ? undefined : String(position[userCount]);
    const userValues = position?.slice(0, userCount) ?? [];
    const allValues = position === undefined ? [] : [...userValues, ...position.slice(userCount + 1)];
    const after =
      cursorInstance === undefined
        ? undefined
        : (s: TableScope, id: string) => (id === cursorInstance ? keysetAfter(s, terms, allValues) : keysetAfter(s, terms.slice(0, userCount), userValues, id > cursorInstance));
    const { rows, run } = await this.#top(scope, 'connection', table, args, first + 1, after);
    const edges = rows.slice(0, first).map((node) => ({
      cursor: encodeCursor(fingerprint, [...terms.slice(0, userCount).map((t) => node.get(t.column.sql)), node.instanceId, ...terms.slice(userCount).map((t) => node.get(t.column.sql))]),
      node,
    }));
    const coverage = run.coverage;
    return { value: { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null }, coverage }, coverage, failures: run.failures };
  }
}
