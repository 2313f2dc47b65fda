/**
 * Authentication and exposure: modes, API keys, JWTs (HS256 and a JWKS served by a real HTTP
 * server on loopback), and the request gate's limits (401, 413, 429, the deadline), CSRF, CORS,
 * introspection and GraphiQL switches. Real servers on port 0, real HTTP.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { createApiKey } from '../../src/auth/index.js';
import { expandConfig } from '../../src/config/index.js';
import { graphql, spawnServer, startServer } from '../helpers/servers.js';

const issuer = 'https://issuer.test';
const audience = 'fleetql-test';
const secret = 'a-test-secret-that-is-long-enough-for-hs256!';

const admin = createApiKey({ id: 'ops', role: 'admin' });
const service = createApiKey({ id: 'reports', role: 'service' });
const acme = createApiKey({ id: 'acme', role: 'tenant', labels: { org: 'acme' } });
const late = createApiKey({ id: 'late', role: 'admin' });
const apiKeys = [admin.entry, service.entry, acme.entry, late.entry];
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function fleetOf(t: TestContext, options: Parameters<typeof startServer>[1] = {}) {
  const server = await startServer(t, { mode: 'production', apiKeys, ...options });
  for (const [id, org] of [['acme-a', 'acme'], ['acme-b', 'acme'], ['globex-a', 'globex']] as const) {
    const created = await graphql(server.url, `mutation($id: ID!, $labels: JSON) { create_instance(id: $id, labels: $labels) { id } }`, { id, labels: { org } }, bearer(admin.key));
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  }
  return server;
}

const listIds = `{ instances(order_by: [{id: asc}]) { id } }`;

test('production: no credentials answers 401 UNAUTHENTICATED; a wrong key too; a right key is served by role', async (t) => {
  const server = await fleetOf(t);
  const anonymous = await graphql(server.url, listIds);
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.errors?.[0]?.extensions?.['code'], 'UNAUTHENTICATED');
  assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer');
  assert.ok(anonymous.headers.get('x-request-id'));

  const wrong = await graphql(server.url, listIds, undefined, bearer('fql_not-a-key'));
  assert.equal(wrong.status, 401);
  assert.equal(wrong.errors?.[0]?.extensions?.['code'], 'UNAUTHENTICATED');
  const malformed = await graphql(server.url, listIds, undefined, { authorization: 'Basic b3BzOm9wcw==' });
  assert.equal(malformed.status, 401);

  const asAdmin = await graphql<{ instances: Array<{ id: string }> }>(server.url, listIds, undefined, bearer(admin.key));
  assert.deepEqual(asAdmin.data?.instances.map((i) => i.id), ['acme-a', 'acme-b', 'globex-a']);
  const viaHeader = await graphql<{ instances: Array<{ id: string }> }>(server.url, listIds, undefined, { 'x-api-key': acme.key });
  assert.deepEqual(viaHeader.data?.instances.map((i) => i.id), ['acme-a', 'acme-b']);
  const asService = await graphql(server.url, `mutation { create_instance(id: "svc") { id } }`, undefined, bearer(service.key));
  assert.equal(asService.errors?.[0]?.extensions?.['code'], 'FORBIDDEN');
});

test('production: introspection and GraphiQL are off by default and can be turned on; development has both', async (t) => {
  const prod = await fleetOf(t);
  const introspect = await graphql(prod.url, `{ __schema { queryType { name } } }`, undefined, bearer(admin.key));
  assert.ok(introspect.errors?.length, 'introspection refused in production');
  const page = await fetch(prod.url, { headers: { accept: 'text/html' } });
  assert.notEqual(page.headers.get('content-type')?.includes('text/html'), true, 'no GraphiQL in production');
  await page.body?.cancel();

  const open = await startServer(t, { mode: 'production', apiKeys, introspection: true, graphiql: true });
  const allowed = await graphql(open.url, `{ __schema { queryType { name } } }`, undefined, bearer(admin.key));
  assert.deepEqual(allowed.data, { __schema: { queryType: { name: 'Query' } } });
  const openPage = await fetch(open.url, { headers: { accept: 'text/html' } });
  assert.ok(openPage.headers.get('content-type')?.includes('text/html'), 'GraphiQL page served without credentials');
  assert.match(await openPage.text(), /graphiql/i);

  const dev = await startServer(t, {});
  const devIntrospect = await graphql(dev.url, `{ __schema { queryType { name } } }`);
  assert.deepEqual(devIntrospect.data, { __schema: { queryType: { name: 'Query' } } });
  assert.equal(expandConfig({}).graphiql, true);
  assert.equal(expandConfig({ mode: 'production', apiKeys }).graphiql, false);
  assert.throws(() => expandConfig({ mode: 'production' }), /production mode needs credentials/);
});

test('development mode bound to a non-loopback address refuses anonymous requests', async (t) => {
  const server = await spawnServer(t, { args: ['--host', '0.0.0.0', '--no-demo'], env: { FLEETQL_MODE: 'development' } });
  const url = `http://127.0.0.1:${new URL(server.url).port}/graphql`;
  const anonymous = await graphql(url, listIds);
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.errors?.[0]?.extensions?.['code'], 'UNAUTHENTICATED');
  assert.match(server.stderr(), /anonymous requests are refused/);
});

/** A JWKS document served by a real HTTP server on loopback, as an identity provider would. */
async function jwksServer(t: TestContext, jwks: unknown): Promise<{ url: string; hits: () => number }> {
  let hits = 0;
  const server = http.createServer((_request, response) => {
    hits += 1;
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`, hits: () => hits };
}

function hs256(claims: JWTPayload, options: { iss?: string; aud?: string; exp?: number | string; key?: string } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('user-1')
    .setIssuer(options.iss ?? issuer)
    .setAudience(options.aud ?? audience)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '5m')
    .sign(new TextEncoder().encode(options.key ?? secret));
}

test('JWTs: HS256 and a JWKS from a loopback server; wrong issuer, audience, expiry, signature or claims answer 401', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const jwks = await jwksServer(t, { keys: [jwk] });
  const server = await fleetOf(t, { jwtSecret: secret, jwksUrl: jwks.url, jwtIssuer: issuer, jwtAudience: audience });

  const tenantToken = await hs256({ fleetql: { role: 'tenant', instances: ['globex-a'] } });
  const asTenant = await graphql<{ instances: Array<{ id: string }> }>(server.url, listIds, undefined, bearer(tenantToken));
  assert.equal(asTenant.errors, undefined, JSON.stringify(asTenant.errors));
  assert.deepEqual(asTenant.data?.instances.map((i) => i.id), ['globex-a']);

  const rsa = await new SignJWT({ fleetql: { role: 'service' } }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('svc').setIssuer(issuer).setAudience(audience).setExpirationTime('5m').sign(privateKey);
  const asService = await graphql<{ instances: Array<{ id: string }> }>(server.url, listIds, undefined, bearer(rsa));
  assert.equal(asService.errors, undefined, JSON.stringify(asService.errors));
  assert.equal(asService.data?.instances.length, 3);
  assert.ok(jwks.hits() >= 1, 'the JWKS was fetched from its URL');

  const { privateKey: strangerKey } = await generateKeyPair('RS256');
  const refused: Record<string, string> = {
    'wrong issuer': await hs256({ fleetql: { role: 'admin' } }, { iss: 'https://evil.test' }),
    'wrong audience': await hs256({ fleetql: { role: 'admin' } }, { aud: 'someone-else' }),
    expired: await hs256({ fleetql: { role: 'admin' } }, { exp: Math.floor(Date.now() / 1000) - 3600 }),
    'bad HS256 signature': await hs256({ fleetql: { role: 'admin' } }, { key: 'another-secret-that-is-also-long-enough!!' }),
    'RS256 signed by an unknown key': await new SignJWT({ fleetql: { role: 'admin' } }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('x').setIssuer(issuer).setAudience(audience).setExpirationTime('5m').sign(strangerKey),
    'no fleetql claim': await hs256({}),
    'unknown role': await hs256({ fleetql: { role: 'root' } }),
    'tenant without instances': await hs256({ fleetql: { role: 'tenant' } }),
    'alg none': `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'x', iss: issuer, aud: audience, fleetql: { role: 'admin' } })).toString('base64url')}.`,
    'garbage with two dots': 'a.b.c',
  };
  for (const [why, token] of Object.entries(refused)) {
    const response = await graphql(server.url, listIds, undefined, bearer(token));
    assert.equal(response.status, 401, why);
    assert.equal(response.errors?.[0]?.extensions?.['code'], 'UNAUTHENTICATED', why);
    assert.equal(response.data, undefined, why);
  }
});

test('limits at the gate: body size 413, rate 429 with Retry-After, batch size, a deadline over a body that never ends', async (t) => {
  const server = await fleetOf(t, { maxBodyBytes: 4096, rateLimitPerSecond: 1, rateLimitBurst: 3, maxBatch: 2, requestTimeoutMs: 300 });
  const huge = await graphql(server.url, `{ instances(where: {id: {_eq: "${'x'.repeat(5000)}"}}) { id } }`, undefined, bearer(acme.key));
  assert.equal(huge.status, 413);
  assert.equal(huge.errors?.[0]?.extensions?.['code'], 'REQUEST_TOO_LARGE');

  // Every principal has its own bucket (the admin's was spent creating the fleet). The service's: burst 3: burst 3, then 429 with a Retry-After.
  const codes: Array<number> = [];
  let retryAfter: string | null = null;
  for (let i = 0; i < 6; i++) {
    const response = await graphql(server.url, listIds, undefined, bearer(service.key));
    codes.push(response.status);
    if (response.status === 429) {
      retryAfter = response.headers.get('retry-after');
      assert.equal(response.errors?.[0]?.extensions?.['code'], 'RATE_LIMITED');
    }
  }
  assert.ok(codes.includes(429), `rate limited after the burst: ${codes.join(',')}`);
  assert.ok(Number(retryAfter) >= 1);
  // Another principal is not affected.
  assert.equal((await graphql(server.url, listIds, undefined, bearer(acme.key))).status, 200);

  const batch = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', ...bearer(acme.key) }, body: JSON.stringify([{ query: '{ __typename }' }, { query: '{ __typename }' }, { query: '{ __typename }' }]) });
  assert.ok(batch.status >= 400 && batch.status < 500, `a batch over the limit is refused, got ${batch.status}`);
  await batch.body?.cancel();

  // A client that sends headers and then never finishes its body gets REQUEST_TIMEOUT, not a hang;
  // asking for an event stream does not exempt it (only a subscription document does).
  const { port } = new URL(server.url);
  for (const accept of ['application/json', 'text/event-stream']) {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request({ host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', accept, 'content-length': '1000', ...bearer(late.key) } }, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      request.on('error', reject);
      request.write('{"query": "{ instan');
    });
    assert.equal(answer.status, 504, accept);
    assert.equal(JSON.parse(answer.body).errors[0].extensions.code, 'REQUEST_TIMEOUT');
  }
});

test('a body of undeclared length (chunked) is bounded by the gate alone: over the limit 413, within it answered', async (t) => {
  const server = await startServer(t, { maxBodyBytes: 4096 });
  const { port } = new URL(server.url);
  const chunked = (chunks: string[]) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request({ host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      request.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
      for (const chunk of chunks) request.write(chunk);
      request.end();
    });
  const padding = ' '.repeat(1000);
  const over = await chunked(['{"query": "{ __typename }"', ...Array.from({ length: 6 }, () => padding), '}']);
  assert.equal(over.status, 413);
  assert.equal(JSON.parse(over.body).errors[0].extensions.code, 'REQUEST_TOO_LARGE');
  const within = await chunked(['{"query": ', '"{ __typename }"', padding, '}']);
  assert.equal(within.status, 200, within.body);
  assert.deepEqual(JSON.parse(within.body).data, { __typename: 'Query' });
});

test('CSRF: a simple cross-site request without the CSRF header is refused; JSON POSTs and GETs with the header pass', async (t) => {
  const server = await startServer(t, {});
  const form = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'query=%7B__typename%7D' });
  assert.equal(form.status, 403);
  const body = (await form.json()) as { errors: Array<{ extensions: { code: string } }> };
  assert.equal(body.errors[0]?.extensions.code, 'CSRF_HEADER_REQUIRED');
  const get = await fetch(`${server.url}?query=${encodeURIComponent('{ __typename }')}`, { headers: { accept: 'application/json' } });
  assert.equal(get.status, 403);
  await get.body?.cancel();
  const getWithHeader = await fetch(`${server.url}?query=${encodeURIComponent('{ __typename }')}`, { headers: { accept: 'application/json', 'x-graphql-yoga-csrf': '1' } });
  assert.deepEqual(await getWithHeader.json(), { data: { __typename: 'Query' } });
  const json = await graphql(server.url, `{ __typename }`);
  assert.deepEqual(json.data, { __typename: 'Query' });
});

test('CORS: no cross-origin access unless the origin is configured', async (t) => {
  const closed = await startServer(t, {});
  const preflight = (url: string, origin: string) =>
    fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' } });
  const refused = await preflight(closed.url, 'https://app.example.com');
  assert.equal(refused.headers.get('access-control-allow-origin'), null);
  await refused.body?.cancel();

  const open = await startServer(t, { mode: 'production', apiKeys, corsOrigins: ['https://app.example.com'] });
  const allowed = await preflight(open.url, 'https://app.example.com');
  assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://app.example.com');
  assert.match(allowed.headers.get('access-control-allow-headers') ?? '', /authorization/);
  await allowed.body?.cancel();
  const other = await preflight(open.url, 'https://evil.example.com');
  assert.notEqual(other.headers.get('access-control-allow-origin'), 'https://evil.example.com');
  await other.body?.cancel();
});

test('graphql-armor limits answer QUERY_TOO_COSTLY: depth, aliases, tokens, directives, cost', async (t) => {
  const server = await startServer(t, { maxDepth: 5, maxAliases: 3, maxTokens: 200, maxDirectives: 3, maxCost: 500 });
  const cases: Record<string, string> = {
    depth: `{ instance(id: "x") { machines { machine_events { machine { machine_events { id } } } } } }`,
    aliases: `{ a: migrations { version } b: migrations { version } c: migrations { version } d: migrations { version } }`,
    tokens: `{ ${Array.from({ length: 120 }, (_, i) => `f${i}: __typename`).join(' ')} }`,
    directives: `{ __typename @include(if: true) @include(if: true) @include(if: true) @include(if: true) }`,
    cost: `{ instance(id: "x") { machines_connection(first: 1000) { edges { node { id name } } } } }`,
  };
  for (const [limit, query] of Object.entries(cases)) {
    const response = await server.gql(query);
    assert.equal(response.errors?.[0]?.extensions?.['code'], 'QUERY_TOO_COSTLY', `${limit}: ${JSON.stringify(response.errors)}`);
    assert.equal(response.data, undefined, limit);
  }
});
