/**
 * The GraphQL-over-HTTP conformance audit of the `graphql-http` package, run against the real
 * fleetql handler on a real HTTP server in production mode (authentication on), every request
 * carrying an admin API key. Introspection is turned on: the audit's own queries ask `__type`. Every MUST audit has to pass; SHOULD and MAY audits are run and
 * reported as diagnostics, without failing the run.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { serverAudits, type AuditResult } from 'graphql-http';
import { apiKeys, bearer } from '../helpers/auth.js';
import { startServer, type InProcessServer } from '../helpers/servers.js';

/** `startServer` registers its cleanup with `t.after`; here one server serves the whole suite. */
const cleanups: Array<() => unknown> = [];
let server: InProcessServer | undefined;

before(async () => {
  server = await startServer({ after: (fn) => void cleanups.push(fn) }, { mode: 'production', apiKeys, rateLimitPerSecond: 0, introspection: true });
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function describeFailure(result: Exclude<AuditResult, { status: 'ok' }>): Promise<string> {
  let body = '';
  try {
    body = await result.response.clone().text();
  } catch {
    body = '(body unavailable)';
  }
  const headers = [...result.response.headers].map(([name, value]) => `${name}: ${value}`).join('; ');
  return `${result.status}: ${result.reason}\n  response ${result.response.status} [${headers}]\n  body ${body.slice(0, 500)}`;
}

// `url` is a function: the audits are listed before the server exists, and read it when they run.
const audits = serverAudits({
  url: () => {
    if (server === undefined) throw new Error('the server did not start');
    return server.url;
  },
  fetchFn: (input: RequestInfo | URL, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(bearer('admin'))) headers.set(name, value);
    return fetch(input, { ...init, headers });
  },
});

test('the audit runs authenticated: without credentials the server answers 401', async () => {
  const response = await fetch(server!.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ __typename }' }) });
  assert.equal(response.status, 401);
  await response.body?.cancel();
});

describe('GraphQL over HTTP audit (graphql-http)', () => {
  test('the audit list is not empty and has MUST audits', () => {
    assert.ok(audits.length > 0);
    assert.ok(audits.some((audit) => audit.name.startsWith('MUST ')));
  });

  for (const audit of audits) {
    test(audit.name, async (t) => {
      const result = await audit.fn();
      assert.equal(result.id, audit.id);
      if (result.status === 'ok') return;
      const details = await describeFailure(result);
      if (audit.name.startsWith('MUST ')) {
        assert.fail(`[${audit.id}] ${audit.name}\n${details}`);
      }
      t.diagnostic(`not met (${audit.name.split(' ')[0]}), [${audit.id}] ${details}`);
    });
  }
});
