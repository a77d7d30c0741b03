import { defineMetrics, type MetricFactory, type Registry } from '@openagents/sync-server-kit';

/** Close codes with a label of their own; any other code is counted as `other` (bounded labels). */
const LABELLED_CLOSE_CODES = new Set([1000, 1001, 1005, 1006, 1008, 1009, 1011, 1012, 1013]);

/** The `code` label of a close: the code itself when it is a known one, else `other`. */
export function closeCodeLabel(code: number): string {
  return LABELLED_CLOSE_CODES.has(code) ? String(code) : 'other';
}

/** Connection lifetimes, in seconds: from a second (a rejected token) to a day. */
const LIFETIME_BUCKETS = [1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600];

/** Sources of send-buffer sizes, one per gateway on the registry, read at scrape time. */
type SendBufferSource = () => Iterable<number>;

const gatewayMetricsFor = defineMetrics((m) => ({
  ...connectionMetrics(m),
  ...deliveryMetrics(m),
  ...entryMetrics(m),
}));

/** Connections and subscriptions: how many, how long, how much they have waiting to be sent. */
function connectionMetrics(m: MetricFactory) {
  const sendBufferSources = new Set<SendBufferSource>();
  return {
    sendBufferSources,
    disconnects: m.counter({
      name: 'sync_gateway_disconnects_total',
      help: 'Closed WebSocket connections, by close code (1000, 1001, 1005, 1006, 1008, 1009, 1011, 1012, 1013, other).',
      labelNames: ['code'] as const,
    }),
    connectionDuration: m.histogram({
      name: 'sync_gateway_connection_duration_seconds',
      help: 'Lifetime of each closed WebSocket connection, from open to close.',
      buckets: LIFETIME_BUCKETS,
    }),
    sendBuffer: m.gauge({
      name: 'sync_gateway_send_buffer_bytes',
      help: 'Bytes waiting in the send buffers of the open sockets at scrape time: stat = sum or max.',
      labelNames: ['stat'] as const,
      collect() {
        let sum = 0;
        let max = 0;
        for (const source of sendBufferSources) {
          for (const bytes of source()) {
            sum += bytes;
            if (bytes > max) max = bytes;
          }
        }
        this.set({ stat: 'sum' }, sum);
        this.set({ stat: 'max' }, max);
      },
    }),
    connections: m.gauge({
      name: 'sync_gateway_connections',
      help: 'Open WebSocket connections on this node.',
    }),
    subscriptions: m.gauge({
      name: 'sync_gateway_subscriptions',
      help: 'Scope subscriptions held by connections on this node (catching up or live).',
    }),
    activeScopes: m.gauge({
      name: 'sync_gateway_active_scopes',
      help: 'Scopes with at least one subscriber on this node (one bus channel each).',
    }),
  };
}

/**
 * What the live path counts, as plain numbers: a streaming reply sends a small event at a time, so
 * a prom-client call (labels hashed, value checked) per received message and per fan-out was a
 * visible share of the gateway's work per event. The counters below take these in when the
 * registry is read (their `collect`), so a scrape shows exactly what a counter call each time
 * would have: nothing is sampled or lost, only added later.
 */
export interface LiveTally {
  /** Events received from the bus (`sync_gateway_bus_events_received_total`). */
  busEvents: number;
  /** `sync` frames published by fan-out, once per live socket (`frames_sent_total{type="sync"}`). */
  syncFrames: number;
  /** Bytes of those frames, once per live socket (`bytes_sent_total`). */
  syncBytes: number;
  /** Events in those frames, once per live socket (`events_delivered_total`). */
  syncEvents: number;
}

/** Takes `key`'s count out of the tally (zeroing it). */
function drain(tally: LiveTally, key: keyof LiveTally): number {
  const n = tally[key];
  tally[key] = 0;
  return n;
}

/** The live path's counters, fed by the tally (see `LiveTally`). */
function liveMetrics(m: MetricFactory) {
  const tally: LiveTally = { busEvents: 0, syncFrames: 0, syncBytes: 0, syncEvents: 0 };
  return {
    tally,
    busEventsReceived: m.counter({
      name: 'sync_gateway_bus_events_received_total',
      help: 'Events received from the bus (before duplicate and order checks).',
      collect() {
        const n = drain(tally, 'busEvents');
        if (n > 0) this.inc(n);
      },
    }),
    eventsDelivered: m.counter({
      name: 'sync_gateway_events_delivered_total',
      help: 'Events written to client sockets, counted once per client.',
      collect() {
        const n = drain(tally, 'syncEvents');
        if (n > 0) this.inc(n);
      },
    }),
    framesSent: m.counter({
      name: 'sync_gateway_frames_sent_total',
      help: 'Frames written to client sockets, by frame type.',
      labelNames: ['type'] as const,
      collect() {
        const n = drain(tally, 'syncFrames');
        if (n > 0) this.inc({ type: 'sync' }, n);
      },
    }),
    bytesSent: m.counter({
      name: 'sync_gateway_bytes_sent_total',
      help: 'Bytes of frames written to client sockets (before permessage-deflate, when negotiated).',
      collect() {
        const n = drain(tally, 'syncBytes');
        if (n > 0) this.inc(n);
      },
    }),
  };
}

/** From the bus and the log to the sockets: events, frames, gap fills, catch-ups, reads. */
function deliveryMetrics(m: MetricFactory) {
  return {
    ...liveMetrics(m),
    fanoutLatency: m.histogram({
      name: 'sync_gateway_fanout_latency_seconds',
      help: 'From an event commit (created_at) to its write to live sockets.',
    }),
    gapFills: m.counter({
      name: 'sync_gateway_gap_fills_total',
      help: 'Reads of the log that filled missing events, by what triggered them.',
      labelNames: ['reason'] as const,
    }),
    duplicatesDropped: m.counter({
      name: 'sync_gateway_duplicates_dropped_total',
      help: 'Bus events dropped because their id was already delivered.',
    }),
    resumes: m.counter({
      name: 'sync_gateway_resumes_total',
      help: 'Subscribes answered, by how the client was brought up to date (delta, reset, bootstrap), or error when it failed.',
      labelNames: ['outcome'] as const,
    }),
    bootstrapPages: m.counter({
      name: 'sync_gateway_bootstrap_pages_total',
      help: 'Bootstrap frames sent, one per page of a (possibly paged) bootstrap.',
    }),
    slowConsumerCloses: m.counter({
      name: 'sync_gateway_slow_consumer_closes_total',
      help: 'Connections closed with 1013 because their send buffer exceeded the limit.',
    }),
    busReconnects: m.counter({
      name: 'sync_gateway_bus_reconnects_total',
      help: 'Times the bus subscription came back after being lost.',
    }),
    busUp: m.gauge({
      name: 'sync_gateway_bus_up',
      help: '1 while the bus subscription is healthy, else 0.',
    }),
    deltaRequests: m.counter({
      name: 'sync_gateway_delta_requests_total',
      help: 'Reads sent to the delta source (after single-flight and cache), by kind and result.',
      labelNames: ['kind', 'result'] as const,
    }),
    bootstrapsSkipped: m.counter({
      name: 'sync_gateway_bootstraps_skipped_total',
      help: 'Bootstrap pages dropped from the node line unread: every subscription waiting for them had closed.',
    }),
  };
}

/** What comes in: client frames, upgrades, token refreshes, and what was refused or failed. */
function entryMetrics(m: MetricFactory) {
  return {
    framesReceived: m.counter({
      name: 'sync_gateway_frames_received_total',
      help: 'Client frames received, by type (invalid when not a valid frame).',
      labelNames: ['type'] as const,
    }),
    frameErrors: m.counter({
      name: 'sync_gateway_frame_errors_total',
      help: 'Error frames sent to clients, by code.',
      labelNames: ['code'] as const,
    }),
    handlerErrors: m.counter({
      name: 'sync_gateway_handler_errors_total',
      help: 'Unexpected errors caught at an entry point (message, upgrade, open, close, drain, bus, fanout, serialise, http), each costing at most one connection.',
      labelNames: ['where'] as const,
    }),
    busMessagesDropped: m.counter({
      name: 'sync_gateway_bus_messages_dropped_total',
      help: 'Bus messages dropped as malformed (not events of the channel scope, or nested too deep); the log fills them.',
      labelNames: ['reason'] as const,
    }),
    tokenRefreshes: m.counter({
      name: 'sync_gateway_token_refreshes_total',
      help: 'auth frames (token refresh in place), by result.',
      labelNames: ['result'] as const,
    }),
    upgrades: m.counter({
      name: 'sync_gateway_upgrades_total',
      help: 'WebSocket upgrade attempts, by result.',
      labelNames: ['result'] as const,
    }),
  };
}

/**
 * The gateway's metrics (see `defineMetrics`: one set per registry). Labels are bounded: frame
 * types, error codes, outcome names; never a scope, user or connection id. `sendBuffers` lists the
 * send-buffer sizes of this gateway's open sockets at scrape time.
 */
export function createGatewayMetrics(registry: Registry, options: { sendBuffers?: SendBufferSource } = {}) {
  const metrics = gatewayMetricsFor(registry);
  if (options.sendBuffers) metrics.sendBufferSources.add(options.sendBuffers);
  return metrics;
}
export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
