import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { repoRoot, runnerEnv, tempDir } from '../helpers/servers.js';

// Keeps `npm run bench` from rotting: every item runs end to end on a tiny fleet (the figures mean
// nothing at this size; the harness checks that fleetql, the shared baseline and the raw loop agree).
test('the benchmark harness runs every item on a tiny fleet and prints one table', { timeout: 180_000 }, async (t) => {
  const cache = tempDir(t, 'fleetql-bench-smoke-');
  const args = ['--import', 'tsx', path.join(repoRoot, 'bench/run.ts'), '--sizes', '12', '--rounds', '1', '--seconds', '1', '--rollout-size', '12', '--archive-count', '3', '--startup-catalog', '50', '--no-write'];
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, args, { cwd: repoRoot, env: { ...runnerEnv(), FLEETQL_BENCH_CACHE: cache }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('exit', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
  });
  assert.equal(code, 0, stderr.slice(-3000));
  const rows = stdout.split('\n').filter((line) => /^\| \d /.test(line));
  assert.deepEqual([...new Set(rows.map((row) => row.split('|')[1]!.trim()))], ['1', '2', '3', '4', '7', '5', '6'], stdout);
  assert.ok(!/NaN|undefined/.test(rows.join('\n')), stdout);
});
