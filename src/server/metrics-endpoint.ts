import type { FleetqlMetrics } from '../metrics/index.js';

export const metricsPath = '/metrics';

/** `GET /metrics`: the Prometheus text exposition of this server's registry. */
export async function metricsResponse(metrics: FleetqlMetrics, request: Request): Promise<Response> {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return new Response('method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' } });
  }
  const { body, contentType } = await metrics.scrape();
  return new Response(request.method === 'HEAD' ? null : body, { status: 200, headers: { 'content-type': contentType, 'cache-control': 'no-store' } });
}
