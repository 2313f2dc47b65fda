import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { defaults, expandConfig, optionsFromEnv } from '../../src/config/index.js';
import { serveOptions } from '../../src/cli/serve.js';

test('defaults describe the embedded setup on loopback', () => {
  const config = expandConfig();
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 4000);
  assert.equal(config.dataDir, path.resolve('data'));
  assert.equal(config.catalogPath, path.resolve('data/catalog.db'));
  assert.equal(config.instancesDir, path.resolve('data/instances'));
  assert.equal(config.migrationsDir, path.resolve('migrations'));
  assert.equal(config.demo, true);
  assert.equal(config.journalMode, defaults.journalMode);
  assert.ok(Object.isFrozen(config));
});

test('environment variables map onto options', () => {
  const options = optionsFromEnv({
    FLEETQL_HOST: '0.0.0.0',
    FLEETQL_PORT: '0',
    FLEETQL_DATA: '/srv/fleet',
    FLEETQL_MIGRATIONS: '/srv/migrations',
    FLEETQL_DEMO: 'false',
    FLEETQL_MAX_OPEN_DESCRIPTORS: '512',
    FLEETQL_JOURNAL_MODE: 'wal',
  });
  const config = expandConfig(options);
  assert.equal(config.host, '0.0.0.0');
  assert.equal(config.port, 0);
  assert.equal(config.dataDir, '/srv/fleet');
  assert.equal(config.migrationsDir, '/srv/migrations');
  assert.equal(config.demo, false);
  assert.equal(config.maxOpenDescriptors, 512);
  assert.equal(config.journalMode, 'wal');
});

test('flags win over environment variables', () => {
  const options = serveOptions(['--port', '5001', '--data', '/tmp/flag', '--no-demo'], { FLEETQL_PORT: '5000', FLEETQL_DATA: '/tmp/env', FLEETQL_HOST: '::1' });
  assert.equal(options.port, 5001);
  assert.equal(options.dataDir, '/tmp/flag');
  assert.equal(options.demo, false);
  assert.equal(options.host, '::1');
});

test('bad values fail early with CONFIG_INVALID', () => {
  const bad: Array<() => unknown> = [
    () => expandConfig({ port: 70000 }),
    () => expandConfig({ port: -1 }),
    () => expandConfig({ port: 1.5 }),
    () => expandConfig({ maxOpenDescriptors: 2 }),
    () => expandConfig({ journalMode: 'memory' as never }),
    () => expandConfig({ host: '' }),
    () => optionsFromEnv({ FLEETQL_PORT: 'abc' }),
    () => optionsFromEnv({ FLEETQL_DEMO: 'perhaps' }),
    () => expandConfig(serveOptions(['--port', '12ab'], {})),
  ];
  for (const make of bad) assert.throws(make, (error: any) => error.code === 'CONFIG_INVALID');
});
