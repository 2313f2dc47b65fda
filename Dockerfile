# syntax=docker/dockerfile:1
# Production image for fleetql.
#   docker build -t fleetql .
#   docker run -p 4000:4000 -v fleetql-data:/data -e FLEETQL_API_KEYS='[{"id":"ops","hash":"sha256:…","role":"admin"}]' fleetql
# The image runs in production mode: every request needs an API key or a JWT, so it needs
# FLEETQL_API_KEYS (hashes from `fleetql keys create`) and/or FLEETQL_JWT_* / FLEETQL_JWKS_URL to start.
# A new, empty /data gets a demo fleet seeded unless you pass -e FLEETQL_DEMO=false.
# The process runs as uid/gid 10001; chown a bind-mounted /data to it.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: full install (TypeScript etc.), compile src/ to dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# patches/ must be in place before npm ci: its postinstall applies them (patch-package).
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies + compiled output only ----
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
COPY schema ./schema
COPY bin ./bin

# Application files stay root-owned (read-only to the service); only /data is writable.
RUN groupadd --system --gid 10001 fleetql \
 && useradd --system --uid 10001 --gid fleetql --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin fleetql \
 && mkdir -p /data \
 && chown fleetql:fleetql /data
USER fleetql

# NODE_ENV=production turns off graphql-js's development checks (a slow instanceof on every type test).
ENV NODE_ENV=production FLEETQL_MODE=production FLEETQL_DATA=/data FLEETQL_HOST=0.0.0.0 FLEETQL_MIGRATIONS=/app/migrations
VOLUME /data
EXPOSE 4000

# No curl in slim images: use node's global fetch. Follows FLEETQL_PORT if it is overridden.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.FLEETQL_PORT||4000)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]

CMD ["node", "dist/cli/main.js", "serve"]
