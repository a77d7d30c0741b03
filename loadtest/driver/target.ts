import type { ConnectionSpec } from './worker-messages';

/** The ids a publish was given: `first..last` in its scope. */
export interface PublishAck {
  first: number;
  last: number;
}

/**
 * What the driver loads: the sync stack (api + gateways + delta) or a fan-out peer. Scenarios
 * only talk to this, so the same code measures both identically.
 */
export interface LoadTarget {
  readonly name: string;
  /** Scopes ready for subscribers and publishes, each with an empty log. */
  prepareScopes(count: number): Promise<string[]>;
  /** How connection number `index` reaches the target, subscribed to `scopes`. */
  connectionSpec(index: number, scopes: string[]): Promise<ConnectionSpec>;
  /** Appends `count` events to `scope` in one commit and answers with their ids. */
  publish(scope: string, count: number, contentBytes: number): Promise<PublishAck>;
  /**
   * `sync_gateway_delta_requests_total` summed over the gateways, by `kind` (delta, bootstrap,
   * heads), and `postgres_delta`: the delta pages the delta service read from Postgres
   * (`sync_delta_reads_total{kind="delta",source="postgres"}`); undefined when the target does not
   * expose them.
   */
  deltaRequests(): Promise<Record<string, number> | undefined>;
  /**
   * The gateways' resident memory summed (`sync_process_resident_memory_bytes` on each one's
   * /metrics), for drift over a soak; undefined when the target does not expose it.
   */
  gatewayRssBytes(): Promise<number | undefined>;
}

/** Thrown for a non-2xx answer; keeps the status so scenarios can count by it. */
export class HttpStatusError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** fetch with a timeout, JSON in and out; a non-2xx answer throws HttpStatusError. */
export async function requestJson<T>(
  url: string,
  options: { method?: string; body?: unknown; token?: string; timeoutMs?: number } = {},
): Promise<T> {
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const res = await fetch(url, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers,
    body: options.body === undefined ? null : JSON.stringify(options.body),
    signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
  });
  const text = await res.text();
  if (!res.ok) throw new HttpStatusError(res.status, `${res.status} ${url}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/**
 * Sums the samples of a Prometheus metric in exposition text, over every label set or only those
 * carrying all of `labels` (e.g. `{ kind: 'delta' }`).
 */
export function sumMetric(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  let found = false;
  let sum = 0;
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (wanted.some((w) => !rest.includes(w))) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) {
      sum += value;
      found = true;
    }
  }
  return found ? sum : undefined;
}

/** http://host:port → ws://host:port (https → wss). */
export function toWebSocketUrl(httpUrl: string): string {
  return httpUrl.replace(/^http/, 'ws').replace(/\/$/, '');
}
