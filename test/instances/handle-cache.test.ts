import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { HandleCache } from '../../src/instances/handle-cache.js';
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
