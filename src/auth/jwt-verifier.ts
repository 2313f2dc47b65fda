import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import type { SecurityConfig } from '../config/index.js';

type JwtConfig = NonNullable<SecurityConfig['jwt']>;

/**
 * Verifies JWTs with jose: HS256 against the shared secret, anything else against the JWKS
 * (fetched from its URL, cached and refreshed by jose). Issuer, audience, expiry and not-before
 * are always checked. Throws on any failure.
 */
export class JwtVerifier {
  readonly #config: JwtConfig;
  readonly #secret: Uint8Array | undefined;
  readonly #jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(config: JwtConfig) {
    this.#config = config;
    this.#secret = config.secret === undefined ? undefined : new TextEncoder().encode(config.secret);
    this.#jwks = config.jwksUrl === undefined ? undefined : createRemoteJWKSet(new URL(config.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 });
  }

  async verify(token: string): Promise<JWTPayload> {
    const { alg } = decodeProtectedHeader(token);
    const checks = { issuer: this.#config.issuer, audience: this.#config.audience, clockTolerance: 5 };
    if (alg === 'HS256') {
      if (this.#secret === undefined) throw new Error('HS256 tokens are not accepted (no FLEETQL_JWT_SECRET)');
      return (await jwtVerify(token, this.#secret, { ...checks, algorithms: ['HS256'] })).payload;
    }
    if (this.#jwks === undefined) throw new Error(`${String(alg)} tokens are not accepted (no FLEETQL_JWKS_URL)`);
    // Never let a JWKS key verify a symmetric algorithm, nor "none".
    return (await jwtVerify(token, this.#jwks, { ...checks, algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] })).payload;
  }
}
