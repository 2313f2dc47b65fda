/**
 * The questions every side answers: the same GraphQL documents go to fleetql and to the shared
 * baseline server; the raw driver loop runs the SQL fleetql's plan amounts to on each file.
 */

/** A tenant's read of its own instance: its 10 newest started machines. */
export const singleRead = `query Read($id: ID!) {
  instance(id: $id) {
    machines(where: { state: { _eq: "started" } }, order_by: [{ created_at: desc }], limit: 10) { id name state cpus memory_mb created_at }
  }
}`;

/** Fleet aggregate: count and sums over the failed machines of the fleet (or of one org). */
export function fleetAggregate(org?: string): string {
  const where = org === undefined ? '' : `(where: { labels: { _contains: { org: "${org}" } } })`;
  return `{ fleet${where} { machines_aggregate(where: { state: { _eq: "failed" } }) { aggregate { count sum { cpus memory_mb } } } } }`;
}

/** Fleet top-20: the 20 newest machines of the whole fleet. */
export const fleetTop20 = `{ fleet { machines(order_by: [{ created_at: desc }], limit: 20) { _instance_id id created_at } } }`;

/** What one instance runs for the aggregate and the top-20 (the raw loop runs exactly these). */
export const instanceSql = {
  aggregate: `SELECT count(*), sum(cpus), sum(memory_mb) FROM machines WHERE state = 'failed'`,
  top20: `SELECT id, created_at FROM machines ORDER BY created_at DESC, id LIMIT 20`,
} as const;

export interface AggregateAnswer {
  count: number;
  cpus: number;
  memory_mb: number;
}

/** The aggregate out of a GraphQL answer (fleetql or baseline), to check every side agrees. */
export function aggregateOf(body: any): AggregateAnswer {
  const aggregate = body?.data?.fleet?.machines_aggregate?.aggregate;
  if (body?.errors || aggregate === undefined) throw new Error(`bad fleet answer: ${JSON.stringify(body).slice(0, 500)}`);
  return { count: Number(aggregate.count), cpus: Number(aggregate.sum.cpus), memory_mb: Number(aggregate.sum.memory_mb) };
}

/** The newest created_at of a top-20 answer and the number of rows, to check every side agrees. */
export function top20Of(body: any): { rows: number; newest: string; oldest: string } {
  const rows = body?.data?.fleet?.machines;
  if (body?.errors || !Array.isArray(rows)) throw new Error(`bad fleet answer: ${JSON.stringify(body).slice(0, 500)}`);
  return { rows: rows.length, newest: rows[0]?.created_at, oldest: rows.at(-1)?.created_at };
}
