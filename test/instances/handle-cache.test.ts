import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { isFleetqlError } from '../../src/errors.js';
import { HandleCache, notCached } from '../../src/instances/handle-cache.js';
import { SqliteDatabase } from '../../src/storage/index.js';
import { tempDir } from '../helpers/servers.js';

test('the handle cache evicts handles not used since the last eviction first, and keeps those in use', async (t) => {
  const dir = tempDir(t);
  const files = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((name) => [name, path.join(dir, `${name}.db`)]));
  for (const file of Object.values(files)) SqliteDatabase.open(file, { journalMode: 'delete', busyTimeoutMs: 0 }).close();
  const cache = new HandleCache({ maxDescriptors: 4, descriptorsPerHandle: 1, open: (file) => SqliteDatabase.open(file, { journalMode: 'delete', busyTimeoutMs: 0 }) });
  t.after(() => cache.close());
  // Which files have a handle open (asking counts as a use of each).
  const open = () => ['a', 'b', 'c', 'd', 'e', 'f'].filter((name) => cache.useCached(files[name]!, cache.opens, () => true, undefined) === true);
  for (const name of ['a', 'b', 'c', 'd']) await cache.use(files[name]!, () => undefined);
  // Reading "a" again (synchronously, as a warm fan-out does) gives it a second chance.
  assert.equal(cache.useCached(files['a']!, cache.opens, (db) => db.isOpen, undefined), true);
  // Full: opening "e" closes idle handles down to 3 of 4 descriptors, "a" kept: "b" goes.
  await cache.use(files['e']!, () => undefined);
  assert.deepEqual(open(), ['a', 'c', 'd', 'e']);
  // Every open handle was just used; "c" is in use while "f" opens: the first idle one in order
  // after their second chance ("d") goes, never "c", the oldest.
  await cache.use(files['c']!, async () => {
    await cache.use(files['f']!, () => undefined);
    assert.deepEqual(open(), ['a', 'c', 'e', 'f'], 'the handle in use stays open');
  });
  assert.deepEqual(cache.stats().evictions, 2);
});

test('useNow opens a handle at once when there is room (evicting idle ones as use would), and asks for the async way when it would have to wait', async (t) => {
  const dir = tempDir(t);
  const files = Object.fromEntries(['a', 'b', 'c'].map((name) => [name, path.join(dir, `${name}.db`)]));
  for (const file of Object.values(files)) SqliteDatabase.open(file, { journalMode: 'delete', busyTimeoutMs: 0 }).close();
  const cache = new HandleCache({ maxDescriptors: 2, descriptorsPerHandle: 1, open: (file) => SqliteDatabase.open(file, { journalMode: 'delete', busyTimeoutMs: 0 }) });
  const nameOf = (db: SqliteDatabase, name: string) => `${name}:${path.basename(db.path)}`;
  assert.equal(cache.useNow(files['a']!, nameOf, 'a'), 'a:a.db', 'opened at once');
  assert.equal(cache.useNow(files['a']!, nameOf, 'a'), 'a:a.db', 'then cached');
  assert.deepEqual([cache.stats().misses, cache.stats().hits, cache.stats().open], [1, 1, 1]);

  // Both handles in use: opening "c" would have to wait for one, so useNow does not open it.
  let releaseA!: () => void;
  let releaseB!: () => void;
  const holdingA = cache.use(files['a']!, () => new Promise<void>((resolve) => (releaseA = resolve)));
  const holdingB = cache.use(files['b']!, () => new Promise<void>((resolve) => (releaseB = resolve)));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(cache.useNow(files['c']!, nameOf, 'c'), notCached, 'every handle in use');
  assert.equal(cache.stats().open, 2);
  // A handle in use is still shared at once.
  assert.equal(cache.useNow(files['b']!, nameOf, 'b'), 'b:b.db');
  releaseA();
  await holdingA;
  // Now "a" is idle: it is evicted in the same call, and "c" opened.
  assert.equal(cache.useNow(files['c']!, nameOf, 'c'), 'c:c.db');
  assert.equal(cache.useCached(files['a']!, cache.opens, () => true, undefined), notCached, '"a" made room');

  // A handle being evicted (its user still on it) is not used at once.
  const evicting = cache.evict(files['b']!);
  assert.equal(cache.useNow(files['b']!, nameOf, 'b'), notCached, 'being evicted');
  releaseB();
  await holdingB;
  await evicting;
  await cache.close();
  assert.equal(cache.useNow(files['c']!, nameOf, 'c'), notCached, 'closed: the async way reports SERVICE_UNAVAILABLE');
  await assert.rejects(cache.use(files['c']!, () => undefined), (error: unknown) => isFleetqlError(error, 'SERVICE_UNAVAILABLE'));
});
