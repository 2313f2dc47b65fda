/**
 * Do the PRAGMAs fleetql runs at every open make cold reads expensive? Raw driver on the cached
 * 10,000-instance bench fleet: open + query + close with and without them, 600 files per variant,
 * 6 rounds alternating, medians (µs per file).
 *
 *   node --expose-gc --import tsx bench/open-pragmas.ts
 */
import Database from 'libsql';
import { fleetOf } from './lib/fleet.js';
import { instanceSql } from './lib/queries.js';
const fleet = await fleetOf(10000, console.log);
const files = fleet.files;
const variants: Record<string, (f: string) => void> = {
  'open+query+close': (f) => { const d = new Database(f); d.prepare(instanceSql.aggregate).raw(true).get([]); d.close(); },
  'open+4 pragmas+query': (f) => { const d = new Database(f); d.exec('PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL;'); d.prepare(instanceSql.aggregate).raw(true).get([]); d.close(); },
  'open+3 pragmas (no journal_mode)+query': (f) => { const d = new Database(f); d.exec('PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;'); d.prepare(instanceSql.aggregate).raw(true).get([]); d.close(); },
  'open+journal_mode only+query': (f) => { const d = new Database(f); d.exec('PRAGMA journal_mode = DELETE;'); d.prepare(instanceSql.aggregate).raw(true).get([]); d.close(); },
};
const names = Object.keys(variants);
const results: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
let offset = 0;
for (let round = 0; round < 6; round++) {
  for (const name of round % 2 ? [...names].reverse() : names) {
    const slice = files.slice(offset, offset + 600); offset = (offset + 600) % 9000;
    const t0 = performance.now();
    for (const f of slice) variants[name]!(f);
    results[name]!.push((performance.now() - t0) * 1000 / slice.length);
    await new Promise((r) => setImmediate(r)); (globalThis as any).gc?.(); await new Promise((r) => setImmediate(r));
  }
}
for (const n of names) { const v = results[n]!.sort((a, b) => a - b); console.log(n.padEnd(40), 'median', v[3]!.toFixed(0), 'µs  all', v.map((x) => x.toFixed(0)).join(' ')); }
