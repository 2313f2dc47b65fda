/** HTTP load and timing helpers shared by the benchmark items. */
import autocannon from 'autocannon';
import { singleRead } from './queries.js';

export async function gql(url: string, query: string, variables?: Record<string, unknown>): Promise<any> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = await response.json();
  if (response.status !== 200 || (body as { errors?: unknown }).errors) throw new Error(`GraphQL request failed (${response.status}): ${JSON.stringify(body).slice(0, 800)}`);
  return body;
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
