import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { expandConfig, optionsFromEnv, type FleetqlOptions } from '../config/index.js';
import { createFleetqlServer, createLogger, graphqlEndpoint } from '../server/index.js';

export const serveHelp = `Usage: fleetql serve [options]

Starts the GraphQL gateway. Every option can also come from the environment.

  --host <addr>        interface to bind          (FLEETQL_HOST, default 127.0.0.1)
  --port <n>           port, 0 picks a free one   (FLEETQL_PORT, default 4000)
  --data <dir>         catalog, instances, archives (FLEETQL_DATA, default ./data)
  --migrations <dir>   instance migrations        (FLEETQL_MIGRATIONS, default ./migrations)
  --no-demo            do not seed a demo fleet into a new data directory (FLEETQL_DEMO=false)
  --log-level <level>  debug, info (an access line per request), warn, error, silent
                       (FLEETQL_LOG_LEVEL, default info)
  --mode <mode>        development (default: anonymous admin on loopback only, GraphiQL and
                       introspection on) or production (credentials required)  (FLEETQL_MODE)

Credentials, limits, CORS and the rest: environment variables, see README.
`;

export function serveOptions(argv: string[], env: NodeJS.ProcessEnv): FleetqlOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      data: { type: 'string' },
      migrations: { type: 'string' },
      'no-demo': { type: 'boolean' },
      mode: { type: 'string' },
      'log-level': { type: 'string' },
    },
    strict: true,
  });
  const options: FleetqlOptions = optionsFromEnv(env);
  if (values.host !== undefined) options.host = values.host;
  if (values.port !== undefined) options.port = /^\d+$/.test(values.port) ? Number(values.port) : Number.NaN;
  if (values.data !== undefined) options.dataDir = values.data;
  if (values.migrations !== undefined) options.migrationsDir = values.migrations;
  if (values['no-demo'] === true) options.demo = false;
  if (values['log-level'] !== undefined) options.logLevel = values['log-level'] as FleetqlOptions['logLevel'] & string;
  if (values.mode !== undefined) options.mode = values.mode as FleetqlOptions['mode'] & string;
  return options;
}

const urlHost = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/** Binds, waits for readiness, prints the one ready line, and shuts down cleanly on SIGTERM/SIGINT. */
export async function serve(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const config = expandConfig(serveOptions(argv, env));
  const logger = createLogger(config.logLevel);
  const fleetql = createFleetqlServer(config, { logger });
  let stopping = false;
  const server = http.createServer(fleetql.handler);
  // /metrics on a port of its own when configured: scrapers then need no route to the API port.
  const metricsServer = fleetql.metricsHandler === undefined ? undefined : http.createServer(fleetql.metricsHandler);
  // Connections with a request in progress; on shutdown every other connection (idle keep-alive,
  // or opened but silent, which closeIdleConnections misses) is closed at once.
  const busy = new Set<Socket>();
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
    busy.add(request.socket);
    response.once('close', () => {
      busy.delete(request.socket);
      if (stopping) request.socket.destroySoon();
    });
  });
  const closeIdle = () => {
    for (const socket of sockets) if (!busy.has(socket)) socket.destroy();
  };

  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    const sweep = setInterval(closeIdle, 100);
    closeIdle();
    const deadline = setTimeout(() => {
      logger.warn('shutdown deadline reached: closing connections with requests still in flight', { connections: sockets.size });
      for (const socket of sockets) socket.destroy();
    }, config.shutdownTimeoutMs);
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    server.close(() => {
      clearInterval(sweep);
      clearTimeout(deadline);
      fleetql.close().then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        (error: unknown) => {
          logger.error('error while closing', { error });
          process.exit(1);
        },
      );
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  if (metricsServer !== undefined) {
    await new Promise<void>((resolve, reject) => {
      metricsServer.once('error', reject);
      metricsServer.listen(config.metricsPort, config.host, () => resolve());
    });
    const { port } = metricsServer.address() as AddressInfo;
    logger.info('metrics listening', { url: `http://${urlHost(config.host)}:${port}/metrics` });
  }
  await fleetql.ready;
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`fleetql listening on http://${urlHost(config.host)}:${port}${graphqlEndpoint}\n`);
}
