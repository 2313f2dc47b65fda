import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseInstanceId, parseLabels } from '../../src/instances/index.js';

test('valid instance ids pass unchanged', () => {
  for (const id of ['a', '0', 'acme-api-fra', 'tenant_42', 'a'.repeat(63)]) assert.equal(parseInstanceId(id), id);
});

test('invalid instance ids answer INVALID_INSTANCE_ID', () => {
  for (const id of ['', '../x', 'a/b', 'A', 'Acme', '-a', '_a', 'a'.repeat(64), 'a'.repeat(200), 'a\u0000b', 'a b', 'é', '.', '..', 42, null]) {
    assert.throws(() => parseInstanceId(id), (error: any) => error.code === 'INVALID_INSTANCE_ID', `id ${JSON.stringify(id)}`);
  }
});

test('labels are a flat object of short strings', () => {
  assert.deepEqual(parseLabels({ org: 'acme', 'team.io/tier': 'gold' }), { org: 'acme', 'team.io/tier': 'gold' });
  assert.deepEqual(parseLabels(null), {});
  const bad: unknown[] = [
    'org=acme',
    ['acme'],
    { org: 1 },
    { org: { nested: 'x' } },
    { org: null },
    { '': 'x' },
    { 'bad key': 'x' },
    { org: 'x'.repeat(257) },
    { org: 'a\u0000b' },
    Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])),
  ];
  for (const labels of bad) assert.throws(() => parseLabels(labels), (error: any) => error.code === 'INVALID_LABELS', JSON.stringify(labels));
});
