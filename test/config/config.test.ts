import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { defaults, expandConfig, optionsFromEnv } from '../../src/config/index.js';
import { serveOptions } from '../../src/cli/serve.js';
import { createLogger } from '../../src/logger.js';

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

test('security: mode, credentials and limits come from the environment and are validated', async () => {
  const { createApiKey } = await import('../../src/auth/index.js');
  const { entry } = createApiKey({ id: 'ops', role: 'admin' });
  const config = expandConfig(
    optionsFromEnv({
      FLEETQL_MODE: 'production',
      FLEETQL_API_KEYS: JSON.stringify([entry]),
      FLEETQL_JWT_SECRET: 'x'.repeat(32),
      FLEETQL_JWT_ISSUER: 'https://issuer.test',
      FLEETQL_JWT_AUDIENCE: 'fleetql',
      FLEETQL_CORS_ORIGINS: 'https://a.example.com, https://b.example.com',
      FLEETQL_MAX_DEPTH: '9',
      FLEETQL_MAX_BODY_BYTES: '65536',
      FLEETQL_RATE_LIMIT_PER_SECOND: '5',
      FLEETQL_REQUEST_TIMEOUT_MS: '1000',
    }),
  );
  assert.equal(config.security.mode, 'production');
  assert.equal(config.security.apiKeys[0]?.hash, entry.hash);
  assert.equal(config.security.jwt?.issuer, 'https://issuer.test');
  assert.deepEqual(config.security.corsOrigins, ['https://a.example.com', 'https://b.example.com']);
  assert.equal(config.security.introspection, false);
  assert.equal(config.graphiql, false);
  assert.deepEqual(
    [config.security.limits.maxDepth, config.security.limits.maxBodyBytes, config.security.limits.rateLimitPerSecond, config.security.limits.requestTimeoutMs],
    [9, 65536, 5, 1000],
  );
  const development = expandConfig({});
  assert.equal(development.security.mode, 'development');
  assert.equal(development.security.introspection, true);
  assert.equal(development.security.limits.rateLimitPerSecond, 0);

  const refused: Array<[string, Parameters<typeof expandConfig>[0]]> = [
    ['production without credentials', { mode: 'production' }],
    ['an unknown mode', { mode: 'staging' as never }],
    ['a plain-text key', { apiKeys: [{ id: 'x', hash: 'hunter2', role: 'admin' }] }],
    ['a tenant key naming nothing', { apiKeys: [{ ...entry, role: 'tenant' }] }],
    ['two keys with one name', { apiKeys: [entry, entry] }],
    ['a short JWT secret', { jwtSecret: 'short', jwtIssuer: 'i', jwtAudience: 'a' }],
    ['JWTs without issuer and audience', { jwtSecret: 'x'.repeat(32) }],
    ['a CORS origin with a path', { corsOrigins: ['https://a.example.com/app'] }],
  ];
  for (const [what, options] of refused) assert.throws(() => expandConfig(options), { code: 'CONFIG_INVALID' }, what);
  assert.throws(() => optionsFromEnv({ FLEETQL_API_KEYS: '/nonexistent/keys.json' }), /FLEETQL_API_KEYS/);
});

test('FLEETQL_LOG_LEVEL / --log-level: lines below the level are not written; an unknown level is refused', () => {
  assert.equal(expandConfig({}).logLevel, 'info');
  assert.equal(expandConfig(optionsFromEnv({ FLEETQL_LOG_LEVEL: 'warn' })).logLevel, 'warn');
  assert.equal(expandConfig(serveOptions(['--log-level', 'error'], { FLEETQL_LOG_LEVEL: 'debug' })).logLevel, 'error', 'the flag wins over the environment');
  assert.throws(() => expandConfig(optionsFromEnv({ FLEETQL_LOG_LEVEL: 'loud' })), { code: 'CONFIG_INVALID', message: /logLevel must be one of debug, info, warn, error, silent/ });
  const written: string[] = [];
  const logger = createLogger('warn', (line) => written.push(line));
  logger.debug('request');
  logger.info('request');
  logger.warn('slow', { ms: 1 });
  logger.error('broken');
  assert.deepEqual(written.map((line) => JSON.parse(line).msg), ['slow', 'broken']);
  const silent: string[] = [];
  createLogger('silent', (line) => silent.push(line)).error('broken');
  assert.deepEqual(silent, []);
});
