import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { schemaSdlFor } from '../../src/cli/schema-print.js';
import { demoMigrations, repoRoot, runCli, tempDir } from '../helpers/servers.js';

test('the committed schema/schema.graphql is what the code builds', () => {
  const committed = fs.readFileSync(path.join(repoRoot, 'schema/schema.graphql'), 'utf8');
  assert.equal(committed, schemaSdlFor(demoMigrations), 'schema drifted: run "npm run schema:print" and commit the result');
});

test('fleetql schema print writes the SDL and --check catches drift', async (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'schema.graphql');
  const written = await runCli(['schema', 'print', '--out', out, '--migrations', demoMigrations]);
  assert.equal(written.code, 0, written.stderr);
  assert.equal(fs.readFileSync(out, 'utf8'), schemaSdlFor(demoMigrations));
  assert.equal((await runCli(['schema', 'print', '--check', '--out', out, '--migrations', demoMigrations])).code, 0);
  fs.appendFileSync(out, '\n# edited by hand\n');
  const drifted = await runCli(['schema', 'print', '--check', '--out', out, '--migrations', demoMigrations]);
  assert.equal(drifted.code, 1);
  assert.match(drifted.stderr, /out of date/);
});
