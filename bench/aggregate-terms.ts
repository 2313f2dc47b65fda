/**
 * What computing only the selected aggregate terms saves per instance: the statement fleetql generated
 * before (every count/sum/avg/min/max of every column) vs now for `aggregate { count sum { cpus memory_mb } }`,
 * on 1,000 warm handles of the cached bench fleet, 21 rounds alternating, medians.
 *
 *   npx tsx bench/aggregate-terms.ts
 */
import Database from 'libsql';
import { fleetOf } from './lib/fleet.js';
import { loadMigrations } from '../src/migrations/index.js';
import { schemaForMigrations } from '../src/schema/index.js';
import { selectAggregate, TableScope } from '../src/query/index.js';
const fleet = await fleetOf(1000, console.log);
const { model } = schemaForMigrations(loadMigrations('migrations'));
const t = model.table('machines')!;
const s = new TableScope(model, model.at(model.head), t);
const where = { state: { _eq: 'failed' } } as any;
const before = selectAggregate(s, where);
const after = selectAggregate(s, where, (fn, c) => fn === 'sum' && (c.sql === 'cpus' || c.sql === 'memory_mb'));
console.log(before.layout.terms.length, 'terms before;', after.layout.terms.length, 'after:', after.sql);
const dbs = fleet.files.map((f) => new Database(f));
const prep = (sql: string) => dbs.map((d) => { const p = d.prepare(sql); p.raw(true); p.safeIntegers(true); return p; });
const sides = { before: prep(before.sql), after: prep(after.sql) };
const res: Record<string, number[]> = { before: [], after: [] };
for (let r = 0; r < 21; r++) for (const k of (r % 2 ? ['before', 'after'] : ['after', 'before']) as Array<keyof typeof sides>) {
  const t0 = performance.now(); for (const p of sides[k]) p.all(['failed']); res[k]!.push((performance.now() - t0) * 1000 / dbs.length);
}
const med = (v: number[]) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const ratios = res.before!.map((b, i) => b / res.after![i]!);
console.log('µs/instance median before', med([...res.before!]).toFixed(1), 'after', med([...res.after!]).toFixed(1), 'ratio median', med(ratios).toFixed(2));
