/** HTTP load and timing helpers shared by the benchmark items. */
import autocannon from 'autocannon';
import http from 'node:http';
import { singleRead } from './queries.js';

// Connections kept open between requests, as any API client keeps them. node:http rather than
// fetch: on Node 20 fetch cost the client about 2 ms more per request (a fleet query selecting no
// instance: 5.0 against 3.2 ms, median of 40), time that would be counted against either server.
const agent = new http.Agent({ keepAlive: true });

export function gql(url: string, query: string, variables?: Record<string, unknown>): Promise<any> {
  const payload = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: { errors?: unknown };
        try {
          body = JSON.parse(text) as { errors?: unknown };
        } catch {
          reject(new Error(`GraphQL request failed (${response.statusCode}): ${text.slice(0, 800)}`));
          return;
        }
        if (response.statusCode !== 200 || body.errors) reject(new Error(`GraphQL request failed (${response.statusCode}): ${text.slice(0, 800)}`));
        else resolve(body);
      });
    });
    request.on('error', reject);
    request.end(payload);
  });
}

/** One request, timed end to end by the client, with its answer. */
export async function timed(url: string, query: string): Promise<{ ms: number; body: any }> {
  const t0 = performance.now();
  const body = await gql(url, query);
  return { ms: performance.now() - t0, body };
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
}

/**
 * autocannon against `url`, each request reading a random instance of `ids` with the single-instance
 * document. `rate` (requests/s over all connections) makes it an open-loop load for latency
 * measurements; without it the connections go as fast as the server answers (throughput).
 */
export async function readLoad(url: string, ids: readonly string[], options: { connections: number; seconds: number; rate?: number }): Promise<LoadResult> {
  const result = await autocannon({
    url,
    connections: options.connections,
    duration: options.seconds,
    ...(options.rate === undefined ? {} : { overallRate: options.rate }),
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: JSON.stringify({ query: singleRead, variables: { id: ids[Math.floor(Math.random() * ids.length)] } }) }),
      },
    ],
  });
  if (result.errors > 0 || result.non2xx > 0 || result.timeouts > 0) {
    throw new Error(`load against ${url}: ${result.errors} errors, ${result.non2xx} non-2xx, ${result.timeouts} timeouts`);
  }
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, requests: result.requests.total };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs the sides of one comparison in an order that alternates between rounds (against drift). */
export async function alternating(round: number, sides: Array<() => Promise<void>>): Promise<void> {
  const order = round % 2 === 0 ? sides : [...sides].reverse();
  for (const side of order) await side();
}
