export { defaults, expandConfig, optionsFromEnv } from './config.js';
export type { FleetqlConfig, FleetqlOptions, JournalMode } from './config.js';
export { parseGrant, roles, securityDefaults } from './security.js';
export type { ApiKeyEntry, Grant, Mode, Role, SecurityConfig, SecurityOptions } from './security.js';
