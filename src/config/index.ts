export { defaults, expandConfig, optionsFromEnv } from './config.js';
export type { FleetqlConfig, FleetqlOptions, JournalMode } from './config.js';
