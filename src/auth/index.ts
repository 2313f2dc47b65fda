export { ApiKeyTable, createApiKey, hashApiKey } from './api-keys.js';
export { Authenticator, isLoopback } from './authenticator.js';
export { anonymous, scopeOf } from './principal.js';
export type { Principal } from './principal.js';
