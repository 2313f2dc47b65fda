/**
 * What a rollout's pre-migration snapshot costs with the raw driver, by recipe: none; a new file
 * (copy to a temporary name, fsync, rename, fsync the directory: what a lone snapshot needs to be
 * durable); a copy over a file created ahead whose directory entry is already synced (one fsync:
 * what rollouts do now). Each migrates ADD COLUMN + CREATE INDEX in one transaction per file, on 1
 * and 2 worker threads, on fresh copies of the cached fleet.
 *
 *   npx tsx bench/snapshot-recipes.ts [--size 600] [--rounds 2]
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { copyOfFleet, fleetOf, repoRoot } from './lib/fleet.js';

const { values: args } = parseArgs({ options: { size: { type: 'string', default: '600' }, rounds: { type: 'string', default: '2' } } });
const size = Number(args.size);
const fleet = await fleetOf(size, (line) => process.stderr.write(`${line}\n`));

// Plain JavaScript, so the threads load nothing but the driver.
const worker = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(${JSON.stringify(path.join(repoRoot, 'node_modules/libsql'))});
const fs = require('node:fs');
const path = require('node:path');
const sql = 'ALTER TABLE machines ADD COLUMN note TEXT; CREATE INDEX machines_note ON machines (note);';
const fsyncPath = (p) => { const fd = fs.openSync(p, 'r'); fs.fsyncSync(fd); fs.closeSync(fd); };
for (const file of workerData.files) {
  const snapshot = path.join(workerData.snapshots, path.basename(file));
  if (workerData.recipe === 'new file') {
    fs.copyFileSync(file, snapshot + '.partial');
    fsyncPath(snapshot + '.partial');
    fs.renameSync(snapshot + '.partial', snapshot);
    fsyncPath(workerData.snapshots);
  } else if (workerData.recipe === 'over a file made ahead') {
    fs.copyFileSync(file, snapshot);
    fsyncPath(snapshot);
  }
  const db = new Database(file);
  db.exec('PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL; BEGIN IMMEDIATE; ' + sql + ' COMMIT;');
  db.close();
}
parentPort.postMessage('done');
`;

const recipes = ['none', 'new file', 'over a file made ahead'] as const;
const rates = new Map<string, number[]>();
for (let round = 0; round < Number(args.rounds); round++) {
  for (const recipe of round % 2 === 0 ? recipes : [...recipes].reverse()) {
    for (const threads of [1, 2]) {
      const copy = copyOfFleet(fleet);
      try {
        const snapshots = path.join(copy.dataDir, 'snapshots');
        fs.mkdirSync(snapshots);
        // Made ahead, not timed: empty files (a rollout adds one directory fsync per batch).
        if (recipe === 'over a file made ahead') for (const file of copy.files) fs.writeFileSync(path.join(snapshots, path.basename(file)), '');
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: threads }, (_, t) =>
            new Promise<void>((resolve, reject) => {
              const w = new Worker(worker, { eval: true, workerData: { files: copy.files.filter((_, i) => i % threads === t), snapshots, recipe } });
              w.once('message', () => resolve());
              w.once('error', reject);
            }),
          ),
        );
        const key = `${recipe}, ${threads} thread(s)`;
        rates.set(key, [...(rates.get(key) ?? []), size / ((performance.now() - t0) / 1000)]);
      } finally {
        copy.remove();
      }
    }
  }
}
console.log(`${size} instances, ${args.rounds} rounds\n| snapshot | instances/s per round |\n|---|---|`);
for (const [key, values] of rates) console.log(`| ${key} | ${values.map((v) => v.toFixed(0)).join(', ')} |`);
