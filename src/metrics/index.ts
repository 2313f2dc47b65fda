export { FleetqlMetrics } from './fleetql-metrics.js';
export type { MetricsSources } from './fleetql-metrics.js';
