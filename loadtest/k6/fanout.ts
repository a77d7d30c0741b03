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
import { eventsMissed } from './lib/sync-metrics.ts';

const SUBSCRIBERS = intEnv('SUBSCRIBERS', 200);
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
      vus: SUBSCRIBERS,
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

export function subscriber(data: SetupData): void {
  const scope = data.scopes[(__VU - 1) % data.scopes.length]!;
  const token = tokenFor(`k6-subscriber-${__VU}`, ['agent:*']);
  const cursors: Cursors = {};
  const holdMs = (WARMUP + DURATION + DRAIN) * 1000;
  const closedAt = Date.now() + holdMs;
  subscribe({ token, scopes: [scope], cursors, holdMs });
  // Anything committed more than DRAIN seconds before we left should have reached us.
  const rest = readDelta(token, scope, cursors[scope] ?? 0);
  for (const event of rest?.events ?? []) {
    if (Date.parse(event.created_at) < closedAt - DRAIN * 1000) eventsMissed.add(1);
  }
}

export function publisher(data: SetupData): void {
  const scope = data.scopes[Math.floor(Math.random() * data.scopes.length)]!;
  writeMessage(tokenFor(`k6-writer-${__VU % 32}`), scope, CONTENT);
}
