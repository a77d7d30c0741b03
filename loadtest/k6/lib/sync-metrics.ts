import { Counter, Trend } from 'k6/metrics';

/** Commit (event `created_at`) to receipt, per delivered event. */
export const deliveryMs = new Trend('sync_delivery_ms', true);
/** Events delivered in order (each counted once). */
export const eventsReceived = new Counter('sync_events_received');
/** Ids skipped over: the stream had a gap (a lost event). Threshold: count==0. */
export const eventsLost = new Counter('sync_events_lost');
/** Ids at or below the cursor: delivered twice. Threshold: count==0. */
export const eventsDuplicated = new Counter('sync_events_duplicated');
/** Committed well before a socket closed but never delivered to it. Threshold: count==0. */
export const eventsMissed = new Counter('sync_events_missed');
/** `error` frames from the gateway. */
export const errorFrames = new Counter('sync_error_frames');
/** WebSocket errors (refused upgrade, reset connection). Threshold: count==0. */
export const wsErrors = new Counter('sync_ws_errors');
