import {
  authEnv,
  busEnv,
  loadEnv,
  nonNegativeInt,
  port,
  positiveInt,
  processEnv,
} from '@openagents/sync-server-kit';
import { z } from 'zod';

/**
 * WS_COMPRESSION values. Only the settings this uWebSockets.js build (v20.30) really delivers: its
 * permessage-deflate negotiation replaces every dedicated compressor with DEDICATED_COMPRESSOR_3KB
 * (a 512-byte window, memLevel 1), so `dedicated-4kb` … `dedicated-256kb` would silently be the
 * 3 KiB one (compression.test.ts pins that, docs/benchmarks.md measures it).
 */
export const WS_COMPRESSION_MODES = ['off', 'shared', 'dedicated-3kb'] as const;
export type WsCompression = (typeof WS_COMPRESSION_MODES)[number];

function wsCompressionError(input: unknown): string {
  const listed = `must be one of ${WS_COMPRESSION_MODES.join(', ')}`;
  if (typeof input === 'string' && /^dedicated-\d+kb$/.test(input)) {
    return `${listed}: the uWebSockets.js build in use negotiates every dedicated compressor as DEDICATED_COMPRESSOR_3KB, so ${input} would be dedicated-3kb (see docs/benchmarks.md)`;
  }
  return listed;
}

const httpUrl = z.url().refine((u) => /^https?:\/\//.test(u), 'must be an http:// or https:// URL');

/** Environment of the gateway; one line per variable says what it does. */
export const GatewayEnv = z.object({
  /** Port of the WebSocket endpoint `/sync` and of `/healthz`, `/readyz`, `/metrics`. */
  PORT: port.default(8080),
  /** REDIS_URL (required), REDIS_CLUSTER, REDIS_CHANNEL_PREFIX. */
  ...busEnv,
  /** Base URL of the delta service, e.g. http://delta:8082 (catch-up, bootstrap, head checks). */
  DELTA_URL: httpUrl,
  /**
   * SYNC_JWT_SECRET (required: it verifies client tokens and signs the gateway's own service
   * token) and the other token variables: see docs/security.md.
   */
  ...authEnv,
  /** Largest client frame in bytes; a bigger one closes the connection with 1009. */
  MAX_FRAME_BYTES: positiveInt.max(16 * 1024 * 1024).default(64 * 1024),
  /** Scopes one connection may subscribe at once. */
  MAX_SUBSCRIPTIONS_PER_CONNECTION: positiveInt.max(100_000).default(100),
  /** Client frames per second one connection may send on average. */
  FRAME_RATE_PER_SECOND: positiveInt.default(50),
  /** Client frames one connection may send in a burst. */
  FRAME_BURST: positiveInt.default(100),
  /** Bytes queued for a client beyond which it is closed with 1013 (resume from your cursor). */
  MAX_BACKPRESSURE_BYTES: positiveInt.default(1024 * 1024),
  /**
   * Bootstrap pages this node asks of the delta service at once; the rest wait in line here. Keep
   * it × gateways within the delta service's MAX_CONCURRENT_BOOTSTRAPS plus its line (32× it).
   */
  DELTA_BOOTSTRAP_CONCURRENCY: positiveInt.default(4),
  /** How often the node compares every active scope's head in the log with what it delivered. */
  HEAD_CHECK_INTERVAL_MS: positiveInt.default(2000),
  /** How long an early (out-of-order) bus event waits for the missing ones before the gap is read from the log. */
  REORDER_HOLD_MS: positiveInt.default(100),
  /** Window over which a draining node closes its connections (1012), spread evenly. */
  DRAIN_WINDOW_MS: positiveInt.default(10_000),
  /** Seconds without traffic before a connection is dropped; pings are sent automatically. */
  IDLE_TIMEOUT_SECONDS: positiveInt.min(8).max(960).default(120),
  /** Open connections one token subject (`sub`) may hold on this node; 0 = no limit. 429 beyond. */
  MAX_CONNECTIONS_PER_SUBJECT: nonNegativeInt.default(0),
  /** Open connections one client IP may hold on this node; 0 = no limit. 429 beyond. */
  MAX_CONNECTIONS_PER_IP: nonNegativeInt.default(0),
  /** Upgrade attempts per second one client IP may make on average (burst UPGRADE_BURST); 0 = no limit. */
  UPGRADE_RATE_PER_SECOND: nonNegativeInt.default(0),
  /** Upgrade attempts one client IP may make in a burst. */
  UPGRADE_BURST: positiveInt.default(50),
  /** Failed upgrade authentications per second one client IP may cause (burst FAILED_AUTH_BURST); 0 = no limit. */
  FAILED_AUTH_RATE_PER_SECOND: nonNegativeInt.default(0),
  /** Failed upgrade authentications one client IP may cause in a burst, before its upgrades get 429 unverified. */
  FAILED_AUTH_BURST: positiveInt.default(20),
  /**
   * Request header holding the client IP set by a trusted proxy (e.g. `x-forwarded-for`: its last
   * entry is used). Unset: the socket's peer address. Set it only behind a proxy that overwrites it.
   */
  TRUST_PROXY_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a header name')
    .transform((h) => h.toLowerCase())
    .optional(),
  /**
   * permessage-deflate on `/sync`: `off` (default; nothing per connection), `shared` (each frame
   * compressed alone, no state per connection) or `dedicated-3kb` (a 3 KiB compressor kept per
   * connection that negotiates it). Clients that do not offer the extension get plain frames;
   * client frames are limited by their inflated size (MAX_FRAME_BYTES).
   */
  WS_COMPRESSION: z
    .enum(WS_COMPRESSION_MODES, { error: (issue) => wsCompressionError(issue.input) })
    .default('off'),
  /** LOG_LEVEL. */
  ...processEnv,
});
export type GatewayConfig = Readonly<z.infer<typeof GatewayEnv>>;

/** Validates the environment; throws a ConfigError naming each bad or missing variable. */
export function loadGatewayConfig(env: Record<string, string | undefined> = process.env): GatewayConfig {
  return loadEnv(GatewayEnv, env);
}

/** Defaults for everything but the connection settings; tests and the standalone server start from here. */
export function gatewayDefaults(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return Object.freeze({
    ...GatewayEnv.parse({
      REDIS_URL: 'redis://unused',
      DELTA_URL: 'http://unused',
      SYNC_JWT_SECRET: 'x'.repeat(32),
    }),
    ...overrides,
  });
}
