/** A small GraphQL-over-HTTP client for operator commands that talk to a running fleetql. */
export interface GraphQLClient {
  request<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** A subscription over SSE: one parsed `data` payload per event, until the server ends the stream. */
  subscribe<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): AsyncGenerator<T>;
}

export class ClientError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'ClientError';
    this.code = code;
  }
}

function raise(errors: Array<{ message: string; extensions?: { code?: string } }>): never {
  const first = errors[0]!;
  throw new ClientError(first.message, first.extensions?.code ?? 'UNKNOWN');
}

/** Options every operator command takes to reach a server. */
export const connectionOptions = { url: { type: 'string' }, 'api-key': { type: 'string' } } as const;

export const connectionHelp = `Talks to a running fleetql: --url (or FLEETQL_URL, default http://127.0.0.1:4000/graphql),
with credentials from --api-key (or FLEETQL_API_KEY: an API key or a JWT, sent as a Bearer token).`;

/** A client for the server and credentials the flags or the environment name. */
export function connect(values: { url?: string | undefined; 'api-key'?: string | undefined }, env: NodeJS.ProcessEnv): GraphQLClient {
  const credential = values['api-key'] ?? (env['FLEETQL_API_KEY'] || undefined);
  return createClient(values.url ?? env['FLEETQL_URL'] ?? 'http://127.0.0.1:4000/graphql', credential === undefined ? {} : { authorization: `Bearer ${credential}` });
}

export function createClient(url: string, headers: Record<string, string> = {}): GraphQLClient {
  const post = (query: string, variables: Record<string, unknown> | undefined, accept: string) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept, ...headers }, body: JSON.stringify({ query, variables }) }).catch((error: unknown) => {
      throw new ClientError(`cannot reach fleetql at ${url}: ${error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)}`, 'UNREACHABLE');
    });
  return {
    async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
      const response = await post(query, variables, 'application/graphql-response+json, application/json');
      const body = (await response.json()) as { data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }> };
      if (body.errors && body.errors.length > 0) raise(body.errors);
      return body.data as T;
    },
    async *subscribe<T>(query: string, variables?: Record<string, unknown>): AsyncGenerator<T> {
      const response = await post(query, variables, 'text/event-stream');
      if (!response.ok || response.body === null) throw new ClientError(`subscription failed with HTTP ${response.status}`, 'SUBSCRIPTION_FAILED');
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      for (let read = await reader.read(); !read.done; read = await reader.read()) {
        buffer += decoder.decode(read.value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = event
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(5).trim())
            .join('\n');
          if (data === '') continue;
          const payload = JSON.parse(data) as { data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }> };
          if (payload.errors && payload.errors.length > 0) raise(payload.errors);
          if (payload.data !== undefined) yield payload.data;
        }
      }
    },
  };
}

/** A flag that takes a whole number (undefined when absent); USAGE otherwise. */
export function wholeNumberFlag(raw: string | undefined, flag: string): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new ClientError(`${flag} takes a whole number`, 'USAGE');
  return Number(raw);
}

/** A flag that takes JSON; USAGE otherwise (`what` says which JSON, with an example). */
export function jsonFlag(raw: string, flag: string, what = 'JSON'): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw new ClientError(`${flag} takes ${what}`, 'USAGE');
  }
}
