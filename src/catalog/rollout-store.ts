import { FleetqlError } from '../errors.js';
import type { SqliteDatabase } from '../storage/index.js';

export const rolloutStates = ['PENDING', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'ABORTED'] as const;
export type RolloutState = (typeof rolloutStates)[number];
/** States in which a rollout holds its instances (a second rollout over them conflicts). */
export const activeRolloutStates: readonly RolloutState[] = ['PENDING', 'RUNNING', 'PAUSED', 'FAILED'];

export interface RolloutStrategy {
  /** Instances migrated first, as a wave of their own. */
  readonly canary: number;
  /** Instances per following wave. */
  readonly batch_size: number;
  /**
   * Instances in flight at once (a sliding window within a wave). Their file work runs on the
   * migration worker threads, as many at a time as there are threads; the others wait their turn
   * without shutting their users out.
   */
  readonly concurrency: number;
  /** The rollout pauses itself when more instances than this have failed. */
  readonly max_failures: number;
  /** Pause once the canary wave is done, for a human to look. */
  readonly pause_after_canary: boolean;
  /**
   * Keep each instance's file as it was before migrating it, so the rollout can be rolled back.
   * Without, each file is migrated where it is, nothing is kept, and a rollback is refused.
   */
  readonly snapshots: boolean;
}

export type RolloutKind = 'forward' | 'rollback';

export interface RolloutRecord {
  readonly id: number;
  /** A rollback puts the instances a forward rollout migrated back to their snapshots. */
  readonly kind: RolloutKind;
  readonly parent_id: number | null;
  /** A rollback that drops writes made after the migration. */
  readonly force: boolean;
  readonly target_version: number;
  readonly filter: unknown;
  readonly strategy: RolloutStrategy;
  readonly state: RolloutState;
  readonly pause_reason: string | null;
  readonly created_at: string;
  readonly started_at: string | null;
  readonly updated_at: string;
  readonly finished_at: string | null;
}

export interface RolloutCounts {
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly skipped: number;
  readonly remaining: number;
}

export interface RolloutFailure {
  readonly instance_id: string;
  readonly wave: number;
  readonly code: string;
  readonly message: string;
  readonly at: string;
}

/** What happened to one instance of a rollout. */
export type RolloutResult =
  | { readonly instance_id: string; readonly outcome: 'done'; readonly version: number; readonly change_counter?: number | null }
  | { readonly instance_id: string; readonly outcome: 'failed'; readonly code: string; readonly message: string }
  | { readonly instance_id: string; readonly outcome: 'skipped'; readonly reason: string };

export interface RolloutItem {
  readonly instance_id: string;
  readonly wave: number;
  /** Forward: the version it had. Rollback: the version it goes back to. */
  readonly from_version: number;
  /** Rollback: the file change counter right after the forward migration (writes since move it). */
  readonly change_counter?: number | null;
}

interface RolloutRow {
  id: number | bigint;
  kind: RolloutKind;
  parent_id: number | bigint | null;
  force: number | bigint;
  target_version: number | bigint;
  filter: string;
  strategy: string;
  state: RolloutState;
  pause_reason: string | null;
  created_at: string;
  started_at: string | null;
  updated_at: string;
  finished_at: string | null;
}

export const rolloutSchema = `
  CREATE TABLE rollouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL DEFAULT 'forward',
    parent_id INTEGER REFERENCES rollouts (id),
    force INTEGER NOT NULL DEFAULT 0,
    target_version INTEGER NOT NULL,
    filter TEXT NOT NULL,
    strategy TEXT NOT NULL,
    state TEXT NOT NULL,
    pause_reason TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    updated_at TEXT NOT NULL,
    finished_at TEXT
  ) STRICT;
  CREATE TABLE rollout_instances (
    rollout_id INTEGER NOT NULL REFERENCES rollouts (id),
    instance_id TEXT NOT NULL,
    wave INTEGER NOT NULL,
    from_version INTEGER NOT NULL,
    change_counter INTEGER,
    state TEXT NOT NULL DEFAULT 'pending',
    error_code TEXT,
    error_message TEXT,
    finished_at TEXT,
    PRIMARY KEY (rollout_id, instance_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX rollout_instances_work ON rollout_instances (rollout_id, state, wave, instance_id);
  CREATE INDEX rollout_instances_by_instance ON rollout_instances (instance_id, rollout_id);`;

function toRecord(row: RolloutRow): RolloutRecord {
  return Object.freeze({
    ...row,
    id: Number(row.id),
    parent_id: row.parent_id === null ? null : Number(row.parent_id),
    force: Number(row.force) === 1,
    target_version: Number(row.target_version),
    filter: JSON.parse(row.filter) as unknown,
    // Rollouts recorded before `snapshots` existed kept snapshots.
    strategy: { snapshots: true, ...(JSON.parse(row.strategy) as Partial<RolloutStrategy>) } as RolloutStrategy,
  });
}

const columns = 'id, kind, parent_id, force, target_version, filter, strategy, state, pause_reason, created_at, started_at, updated_at, finished_at';
const active = activeRolloutStates.map((s) => `'${s}'`).join(', ');

/**
 * Rollouts live in the catalog, one row per rollout and one per instance it moves, so a restart
 * finds every rollout where it was and resumes it. Every method is one catalog transaction.
 */
export class RolloutStore {
  readonly #db: SqliteDatabase;
  readonly #now: () => string;

  constructor(db: SqliteDatabase, now: () => string) {
    this.#db = db;
    this.#now = now;
  }

  /** Records a rollout with its instances and waves; ROLLOUT_CONFLICT if an active rollout holds any of them. */
  create(target: number, filter: unknown, strategy: RolloutStrategy, items: readonly RolloutItem[], rollback?: { parentId: number; force: boolean }): RolloutRecord {
    return this.#db.transaction(() => {
      for (let i = 0; i < items.length; i += 500) {
        const ids = items.slice(i, i + 500).map((item) => item.instance_id);
        const held = this.#db.get<{ instance_id: string; rollout_id: bigint }>(
          `SELECT ri.instance_id, ri.rollout_id FROM rollout_instances ri JOIN rollouts r ON r.id = ri.rollout_id
           WHERE ri.instance_id IN (SELECT value FROM json_each(?)) AND r.state IN (${active}) LIMIT 1`,
          [JSON.stringify(ids)],
        );
        if (held !== undefined) {
          throw new FleetqlError('ROLLOUT_CONFLICT', `instance "${held.instance_id}" is held by active rollout ${held.rollout_id}: pause, finish or abort it first`, {
            extensions: { instance_id: held.instance_id, rollout_id: String(held.rollout_id) },
          });
        }
      }
      const now = this.#now();
      const id = Number(
        this.#db.run(`INSERT INTO rollouts (kind, parent_id, force, target_version, filter, strategy, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'PENDING', ?, ?)`, [
          rollback ? 'rollback' : 'forward',
          rollback?.parentId ?? null,
          rollback?.force ? 1 : 0,
          target,
          JSON.stringify(filter ?? null),
          JSON.stringify(strategy),
          now,
          now,
        ]).lastInsertRowid,
      );
      for (const item of items) {
        this.#db.run(`INSERT INTO rollout_instances (rollout_id, instance_id, wave, from_version, change_counter) VALUES (?, ?, ?, ?, ?)`, [
          id,
          item.instance_id,
          item.wave,
          item.from_version,
          item.change_counter ?? null,
        ]);
      }
      return this.get(id)!;
    });
  }

  get(id: number): RolloutRecord | undefined {
    const row = this.#db.get<RolloutRow>(`SELECT ${columns} FROM rollouts WHERE id = ?`, [id]);
    return row === undefined ? undefined : toRecord(row);
  }

  list(options: { states?: readonly RolloutState[] | undefined; limit: number; offset: number }): RolloutRecord[] {
    const params: unknown[] = [];
    let where = '1';
    if (options.states && options.states.length > 0) {
      where = `state IN (SELECT value FROM json_each(?))`;
      params.push(JSON.stringify(options.states));
    }
    params.push(options.limit, options.offset);
    return this.#db.all<RolloutRow>(`SELECT ${columns} FROM rollouts WHERE ${where} ORDER BY id DESC LIMIT ? OFFSET ?`, params).map(toRecord);
  }

  /** Rollouts a restart must pick up again. */
  running(): RolloutRecord[] {
    return this.#db.all<RolloutRow>(`SELECT ${columns} FROM rollouts WHERE state IN ('PENDING', 'RUNNING') ORDER BY id`).map(toRecord);
  }

  setState(id: number, state: RolloutState, reason: string | null = null): RolloutRecord {
    const now = this.#now();
    const terminal = state === 'COMPLETED' || state === 'ABORTED' || state === 'FAILED';
    this.#db.run(
      `UPDATE rollouts SET state = ?, pause_reason = ?, updated_at = ?, started_at = coalesce(started_at, CASE WHEN ? = 'RUNNING' THEN ? END), finished_at = CASE WHEN ? THEN ? ELSE NULL END WHERE id = ?`,
      [state, reason, now, state, now, terminal ? 1 : 0, now, id],
    );
    return this.get(id)!;
  }

  /** The lowest wave (above `afterWave`, if given) that still has pending instances, and up to `limit` of them. */
  nextPending(id: number, limit: number, afterWave = -1): { wave: number; items: RolloutItem[] } | undefined {
    const first = this.#db.get<{ wave: bigint }>(`SELECT min(wave) AS wave FROM rollout_instances WHERE rollout_id = ? AND state = 'pending' AND wave > ?`, [id, afterWave]);
    if (first?.wave === null || first?.wave === undefined) return undefined;
    const wave = Number(first.wave);
    const items = this.#db
      .all<{ instance_id: string; from_version: bigint; change_counter: bigint | null }>(
        `SELECT instance_id, from_version, change_counter FROM rollout_instances WHERE rollout_id = ? AND state = 'pending' AND wave = ? ORDER BY instance_id LIMIT ?`,
        [id, wave, limit],
      )
      .map((row) => ({ instance_id: row.instance_id, wave, from_version: Number(row.from_version), change_counter: row.change_counter === null ? null : Number(row.change_counter) }));
    return { wave, items };
  }

  /**
   * Records what happened to a set of instances in one transaction (one sync of the catalog for
   * all of them): done ones get their new version in the instances table too.
   */
  recordResults(id: number, results: readonly RolloutResult[]): void {
    if (results.length === 0) return;
    this.#db.transaction(() => {
      const now = this.#now();
      for (const result of results) {
        const where = [id, result.instance_id];
        switch (result.outcome) {
          case 'done':
            this.#db.run(
              `UPDATE rollout_instances SET state = 'done', error_code = NULL, error_message = NULL, finished_at = ?, change_counter = coalesce(?, change_counter) WHERE rollout_id = ? AND instance_id = ?`,
              [now, result.change_counter ?? null, ...where],
            );
            this.#db.run(`UPDATE instances SET schema_version = ?, updated_at = ? WHERE id = ?`, [result.version, now, result.instance_id]);
            break;
          case 'failed':
            this.#db.run(`UPDATE rollout_instances SET state = 'failed', error_code = ?, error_message = ?, finished_at = ? WHERE rollout_id = ? AND instance_id = ?`, [result.code, result.message, now, ...where]);
            break;
          case 'skipped':
            // An instance that left the rollout's reach (destroyed meanwhile, say) is skipped, not failed.
            this.#db.run(`UPDATE rollout_instances SET state = 'skipped', error_message = ?, finished_at = ? WHERE rollout_id = ? AND instance_id = ?`, [result.reason, now, ...where]);
            break;
        }
      }
    });
  }

  /** Failed instances become pending again (resume retries them). */
  retryFailed(id: number): void {
    this.#db.run(`UPDATE rollout_instances SET state = 'pending', finished_at = NULL WHERE rollout_id = ? AND state = 'failed'`, [id]);
  }

  /** Pending instances are skipped (abort). */
  skipPending(id: number, reason: string): void {
    this.#db.run(`UPDATE rollout_instances SET state = 'skipped', error_message = ?, finished_at = ? WHERE rollout_id = ? AND state = 'pending'`, [reason, this.#now(), id]);
  }

  /** What a rollback of `parentId` must move: its done instances still past the version they had, in their waves. */
  rollbackItems(parentId: number): RolloutItem[] {
    return this.#db
      .all<{ instance_id: string; wave: bigint; from_version: bigint; change_counter: bigint | null }>(
        `SELECT ri.instance_id, ri.wave, ri.from_version, ri.change_counter FROM rollout_instances ri JOIN instances i ON i.id = ri.instance_id
         WHERE ri.rollout_id = ? AND ri.state = 'done' AND i.state = 'ACTIVE' AND i.schema_version > ri.from_version ORDER BY ri.wave, ri.instance_id`,
        [parentId],
      )
      .map((row) => ({ instance_id: row.instance_id, wave: Number(row.wave), from_version: Number(row.from_version), change_counter: row.change_counter === null ? null : Number(row.change_counter) }));
  }

  /** Rollbacks of a rollout that still hold instances. */
  activeRollbacksOf(parentId: number): number[] {
    return this.#db.all<{ id: bigint }>(`SELECT id FROM rollouts WHERE parent_id = ? AND state IN (${active})`, [parentId]).map((r) => Number(r.id));
  }

  /** Forward rollouts finished before `before` whose snapshots no active rollback needs. */
  snapshotsToPrune(before: string): number[] {
    return this.#db
      .all<{ id: bigint }>(
        `SELECT r.id FROM rollouts r WHERE r.kind = 'forward' AND r.state IN ('COMPLETED', 'ABORTED') AND r.finished_at < ?
         AND NOT EXISTS (SELECT 1 FROM rollouts b WHERE b.parent_id = r.id AND b.state IN (${active}))`,
        [before],
      )
      .map((r) => Number(r.id));
  }

  counts(id: number): RolloutCounts {
    const rows = this.#db.all<{ state: string; n: bigint }>(`SELECT state, count(*) AS n FROM rollout_instances WHERE rollout_id = ? GROUP BY state`, [id]);
    const by = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    const done = by['done'] ?? 0;
    const failed = by['failed'] ?? 0;
    const skipped = by['skipped'] ?? 0;
    const remaining = by['pending'] ?? 0;
    return { total: done + failed + skipped + remaining, done, failed, skipped, remaining };
  }

  /** Per state of rollouts holding instances (every such state, 0 included): how many, and their instances still pending. */
  overview(): { rollouts: Record<string, number>; remaining: Record<string, number> } {
    const rollouts: Record<string, number> = Object.fromEntries(activeRolloutStates.map((s) => [s, 0]));
    const remaining: Record<string, number> = { ...rollouts };
    const rows = this.#db.all<{ state: string; rollouts: bigint; remaining: bigint }>(
      `SELECT r.state, count(DISTINCT r.id) AS rollouts, count(ri.instance_id) AS remaining
       FROM rollouts r LEFT JOIN rollout_instances ri ON ri.rollout_id = r.id AND ri.state = 'pending'
       WHERE r.state IN (${active}) GROUP BY r.state`,
    );
    for (const row of rows) {
      rollouts[row.state] = Number(row.rollouts);
      remaining[row.state] = Number(row.remaining);
    }
    return { rollouts, remaining };
  }

  failures(id: number, limit: number): RolloutFailure[] {
    return this.#db.all<RolloutFailure & { wave: bigint }>(
      `SELECT instance_id, wave, error_code AS code, error_message AS message, finished_at AS at FROM rollout_instances WHERE rollout_id = ? AND state = 'failed' ORDER BY finished_at, instance_id LIMIT ?`,
      [id, limit],
    ).map((row) => ({ ...row, wave: Number(row.wave) }));
  }
}
