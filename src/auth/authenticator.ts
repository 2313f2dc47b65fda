import type { JWTPayload } from 'jose';
import { parseGrant, type Grant, type SecurityConfig } from '../config/index.js';
import { FleetqlError } from '../errors.js';
import { ApiKeyTable } from './api-keys.js';
import type { JwtVerifier } from './jwt-verifier.js';
import { anonymous, type Principal } from './principal.js';

/** Whether `host` (the address the server binds) only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

function unauthenticated(message: string): FleetqlError {
  return new FleetqlError('UNAUTHENTICATED', message);
}

/** The credential a request carries: `Authorization: Bearer <key or JWT>` or `x-api-key: <key>`. */
function credentialOf(request: Request): string | undefined {
  const authorization = request.headers.get('authorization');
  if (authorization !== null) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match === null) throw unauthenticated('the Authorization header must be "Bearer <API key or JWT>"');
    return match[1];
  }
  return request.headers.get('x-api-key')?.trim() || undefined;
}

/** A principal from what a credential grants; only a tenant carries instances. */
function principalOf(id: string, via: Principal['via'], grant: Grant): Principal {
  return Object.freeze({
    id,
    role: grant.role,
    via,
    ...(grant.role === 'tenant' ? { instances: { ids: grant.instances ?? [], labels: grant.labels } } : {}),
  });
}

/** The `fleetql` claim of a JWT: `{ role, instances?, labels? }`, and its subject. */
function principalOfClaims(payload: JWTPayload): Principal {
  const claim = payload['fleetql'];
  if (claim === null || typeof claim !== 'object' || Array.isArray(claim)) throw unauthenticated('the token has no "fleetql" claim ({ role, instances?, labels? })');
  if (typeof payload.sub !== 'string' || payload.sub === '') throw unauthenticated('the token has no subject (sub)');
  const grant = parseGrant(claim as Record<string, unknown>, (message) => unauthenticated(`the token's fleetql claim: ${message}`));
  return principalOf(`jwt:${payload.iss ?? ''}:${payload.sub}`, 'jwt', grant);
}

/**
 * Turns a request's credentials into a principal. A request without credentials is anonymous
 * (an admin) only in development mode while bound to loopback; otherwise it has no principal.
 * Bad credentials always fail (UNAUTHENTICATED), never fall back to anonymous.
 */
export class Authenticator {
  readonly #keys: ApiKeyTable;
  readonly #jwtConfig: SecurityConfig['jwt'];
  // jose is loaded on the first JWT only: a server without JWTs starts without it.
  #jwt: Promise<JwtVerifier> | undefined;
  readonly anonymousAllowed: boolean;

  constructor(security: SecurityConfig, host: string) {
    this.#keys = new ApiKeyTable(security.apiKeys);
    this.#jwtConfig = security.jwt;
    this.anonymousAllowed = security.mode === 'development' && isLoopback(host);
  }

  async authenticate(request: Request): Promise<Principal | undefined> {
    const credential = credentialOf(request);
    if (credential === undefined) return this.anonymousAllowed ? anonymous : undefined;
    if (credential.split('.').length === 3) {
      const config = this.#jwtConfig;
      if (config === undefined) throw unauthenticated('JWTs are not accepted by this server');
      this.#jwt ??= import('./jwt-verifier.js').then(({ JwtVerifier }) => new JwtVerifier(config));
      const verifier = await this.#jwt;
      let payload: JWTPayload;
      try {
        payload = await verifier.verify(credential);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        throw unauthenticated(`the token is not valid${typeof code === 'string' ? ` (${code})` : ''}`);
      }
      return principalOfClaims(payload);
    }
    const entry = this.#keys.find(credential);
    if (entry === undefined) throw unauthenticated('unknown API key');
    return principalOf(`key:${entry.id}`, 'api-key', entry);
  }
}
