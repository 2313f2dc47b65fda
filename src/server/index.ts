export { createFleetqlServer, graphqlEndpoint } from './fleetql-server.js';
export type { FleetqlServer } from './fleetql-server.js';
export { createLogger } from '../logger.js';
export type { Logger, LogLevel } from '../logger.js';
