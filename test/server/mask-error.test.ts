import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GraphQLError } from 'graphql';
import { FleetqlError } from '../../src/errors.js';
import { createMaskError } from '../../src/server/mask-error.js';
import type { Logger } from '../../src/server/index.js';

function recordingLogger(): Logger & { lines: Array<[string, Record<string, unknown> | undefined]> } {
  const lines: Array<[string, Record<string, unknown> | undefined]> = [];
  const log = (message: string, fields?: Record<string, unknown>) => void lines.push([message, fields]);
  return { lines, debug: log, info: log, warn: log, error: log };
}

test('coded errors reach the client unchanged', () => {
  const logger = recordingLogger();
  const coded = new FleetqlError('INSTANCE_NOT_FOUND', 'instance "x" not found');
  const located = new GraphQLError(coded.message, { path: ['instance'], originalError: coded, extensions: coded.extensions });
  const masked = createMaskError(logger)(located, 'Unexpected error.') as GraphQLError;
  assert.equal(masked, located);
  assert.equal(logger.lines.length, 0);
});

test('unexpected errors are masked; their details go to the log only', () => {
  const logger = recordingLogger();
  const secret = new Error('SQLITE_CORRUPT: /srv/data/instances/ab/cd/x.db: SELECT * FROM machines');
  const located = new GraphQLError(secret.message, { path: ['instance', 'machines'], originalError: secret });
  const masked = createMaskError(logger)(located, 'Unexpected error.') as GraphQLError;
  assert.equal(masked.message, 'Unexpected error.');
  assert.deepEqual(masked.extensions, { code: 'INTERNAL_SERVER_ERROR' });
  assert.deepEqual(masked.path, ['instance', 'machines']);
  assert.ok(!JSON.stringify(masked.toJSON()).includes('/srv'));
  assert.equal(logger.lines.length, 1);
  assert.equal(logger.lines[0]![1]!['error'], secret);
});

test('inside a request, a masked error carries the request id, and so does its log line', async () => {
  const { withinRequest: withRequestId } = await import('../../src/server/request-scope.js');
  const logger = recordingLogger();
  const secret = new Error('SQLITE_IOERR: /srv/data/instances/x.db');
  const masked = withRequestId('req-42', () => createMaskError(logger)(new GraphQLError(secret.message, { path: ['instance'], originalError: secret }), 'Unexpected error.')) as GraphQLError;
  assert.deepEqual(masked.extensions, { code: 'INTERNAL_SERVER_ERROR', request_id: 'req-42' });
  assert.equal(logger.lines[0]![1]!['request_id'], 'req-42');
  assert.ok(!JSON.stringify(masked.toJSON()).includes('/srv'));
});
