/**
 * Fan-out: SUBSCRIBERS WebSocket clients spread over SCOPES agent scopes, while publishers write
 * RATE messages per second through the api. Every delivery is timed from the event's commit
 * (`created_at`) to receipt; ids must arrive contiguous and once.
 *
 *   k6 run -e BASE_URL=http://localhost:8787 -e SYNC_JWT_SECRET=… loadtest/k6/fanout.ts
 */
import type { Options } from 'k6/options';
import { createAgent, readDelta, uuid, writeMessage } from './lib/api.ts';
import { intEnv } from './lib/config.ts';
import { tokenFor } from './lib/jwt.ts';
import { type Cursors, subscribe } from './lib/subscriber.ts';
import { type SummaryData, summaryOutputs } from './lib/summary.ts';
import { eventsMissed } from './lib/sync-metrics.ts';

const SUBSCRIBERS = intEnv('SUBSCRIBERS', 200);
/** Sockets each subscriber VU holds (k6/websockets does not block the VU on one socket). */
const SOCKETS_PER_VU = Math.max(1, intEnv('SOCKETS_PER_VU', 20));
const SUBSCRIBER_VUS = Math.ceil(SUBSCRIBERS / SOCKETS_PER_VU);
const SCOPES = intEnv('SCOPES', 20);
const RATE = intEnv('RATE', 50);
const DURATION = intEnv('DURATION', 60);
const WARMUP = intEnv('WARMUP', 5);
const DRAIN = intEnv('DRAIN', 5);
const CONTENT = 'x'.repeat(intEnv('CONTENT_BYTES', 64));

export const options: Options = {
  setupTimeout: '120s',
  scenarios: {
    subscribers: {
      executor: 'per-vu-iterations',
      exec: 'subscriber',
      vus: SUBSCRIBER_VUS,
      iterations: 1,
      maxDuration: `${WARMUP + DURATION + DRAIN + 30}s`,
    },
    publishers: {
      executor: 'constant-arrival-rate',
      exec: 'publisher',
      rate: RATE,
      timeUnit: '1s',
      duration: `${DURATION}s`,
      startTime: `${WARMUP}s`,
      preAllocatedVUs: Math.max(5, Math.ceil(RATE / 20)),
      maxVUs: Math.max(50, RATE),
    },
  },
  thresholds: {
    sync_delivery_ms: ['p(95)<50', 'p(99)<100'],
    sync_events_lost: ['count==0'],
    sync_events_duplicated: ['count==0'],
    sync_events_missed: ['count==0'],
    sync_error_frames: ['count==0'],
    'http_req_duration{name:write_message}': ['p(95)<100', 'p(99)<250'],
    sync_ws_errors: ['count==0'],
    // The publishers could not keep RATE (no free VU): the run did less than it claims.
    dropped_iterations: ['count==0'],
    checks: ['rate>0.99'],
  },
};

export interface SetupData {
  scopes: string[];
}

export function setup(): SetupData {
  const token = tokenFor('k6-setup');
  const org = uuid();
  const scopes: string[] = [];
  for (let i = 0; i < SCOPES; i++) scopes.push(createAgent(token, org, `k6 fanout ${i}`));
  return { scopes };
}

export async function subscriber(data: SetupData): Promise<void> {
  const token = tokenFor(`k6-subscriber-${__VU}`, ['agent:*']);
  const holdMs = (WARMUP + DURATION + DRAIN) * 1000;
  const closedAt = Date.now() + holdMs;
  // Socket i of this VU is subscriber number (VU-1)*SOCKETS_PER_VU + i, spread over the scopes.
  const first = (__VU - 1) * SOCKETS_PER_VU;
  const sessions = Array.from({ length: Math.min(SOCKETS_PER_VU, SUBSCRIBERS - first) }, (_, i) => ({
    scope: data.scopes[(first + i) % data.scopes.length]!,
    cursors: {} as Cursors,
  }));
  await Promise.all(sessions.map((s) => subscribe({ token, scopes: [s.scope], cursors: s.cursors, holdMs })));
  // Anything committed more than DRAIN seconds before we left should have reached us.
  for (const s of sessions) {
    const rest = readDelta(token, s.scope, s.cursors[s.scope] ?? 0);
    for (const event of rest?.events ?? []) {
      if (Date.parse(event.created_at) < closedAt - DRAIN * 1000) eventsMissed.add(1);
    }
  }
}

export function publisher(data: SetupData): void {
  const scope = data.scopes[Math.floor(Math.random() * data.scopes.length)]!;
  writeMessage(tokenFor(`k6-writer-${__VU % 32}`), scope, CONTENT);
}

/** The end-of-test summary as text on stdout and JSON in SUMMARY_DIR (lib/summary.ts). */
export function handleSummary(data: SummaryData): Record<string, string> {
  return summaryOutputs('fanout', data);
}
