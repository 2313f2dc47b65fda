// Does a rollout gain from a second core? Migrates N instance files (ALTER + UPDATE + CREATE INDEX in one
// transaction, rollback journal, synchronous=FULL) on the main thread, then the same on 2 worker threads.
//   node bench/migration-workers.mjs
import Database from 'libsql';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
const migrate = (file) => {
  const db = new Database(file);
  db.exec('PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL; BEGIN IMMEDIATE; ALTER TABLE items ADD COLUMN note TEXT; UPDATE items SET note = s; CREATE INDEX items_note ON items(note); COMMIT;');
  db.close();
};
if (!isMainThread) {
  for (const f of workerData.files) migrate(f);
  parentPort.postMessage('done');
} else {
  const N = Number(process.argv[2] ?? 600);
  const rounds = Number(process.argv[3] ?? 6);
  const ratios = [];
  const make = (dir) => {
    fs.rmSync(dir, { recursive: true, force: true }); fs.mkdirSync(dir, { recursive: true });
    const files = [];
    for (let i = 0; i < N; i++) { const f = `${dir}/${i}.db`; const db = new Database(f); db.exec(`CREATE TABLE items(id INTEGER PRIMARY KEY, s TEXT); ${Array.from({length: 50}, (_, j) => `INSERT INTO items(s) VALUES ('v${j}')`).join(';')}`); db.close(); files.push(f); }
    return files;
  };
  for (let round = 0; round < rounds; round++) {
    // Alternate which side goes first, so drift in the disk's speed does not favour one.
    const workersFirst = round % 2 === 1;
    const single = async () => {
      const files = make(path.join(os.tmpdir(), 'fleetql-migw-a'));
      const t0 = performance.now();
      for (const f of files) migrate(f);
      return performance.now() - t0;
    };
    const pair = async () => {
      const files = make(path.join(os.tmpdir(), 'fleetql-migw-b'));
      const t0 = performance.now();
      await Promise.all([0, 1].map((k) => new Promise((res, rej) => { const w = new Worker(new URL(import.meta.url), { workerData: { files: files.filter((_, i) => i % 2 === k) } }); w.on('message', () => { w.terminate(); res(); }); w.on('error', rej); w.on('exit', (code) => (code === 0 ? res() : rej(new Error(`worker exited ${code}`)))); })));
      return performance.now() - t0;
    };
    let one, two;
    if (workersFirst) { two = await pair(); one = await single(); } else { one = await single(); two = await pair(); }
    ratios.push(one / two);
    console.log(`round ${round}: 1 thread ${one.toFixed(0)} ms (${(N / one * 1000).toFixed(0)}/s), 2 workers ${two.toFixed(0)} ms (${(N / two * 1000).toFixed(0)}/s), speedup ${(one / two).toFixed(2)}x`);
  }
  const sorted = [...ratios].sort((a, b) => a - b);
  console.log(`median speedup of 2 workers over 1 thread: ${sorted[Math.floor(sorted.length / 2)].toFixed(2)}x over ${rounds} rounds of ${N}`);
}
