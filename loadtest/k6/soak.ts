/**
 * Soak: subscribers ramp up to SUBSCRIBERS over 10 minutes, hold for DURATION minutes (default
 * 40, an hour in all), then ramp down, while writers commit RATE messages per second. Each
 * subscriber reconnects every SESSION seconds and resumes from its cursor, so the hour also
 * exercises resumes. Same guarantees and latency thresholds as fanout.
 *
 *   k6 run -e BASE_URL=http://localhost:8787 -e SYNC_JWT_SECRET=… loadtest/k6/soak.ts
 */
import type { Options } from 'k6/options';
import { createAgent, uuid, writeMessage } from './lib/api.ts';
import { intEnv } from './lib/config.ts';
import { tokenFor } from './lib/jwt.ts';
import { type Cursors, subscribe } from './lib/subscriber.ts';
import { type SummaryData, summaryOutputs } from './lib/summary.ts';

const SUBSCRIBERS = intEnv('SUBSCRIBERS', 1000);
const SCOPES = intEnv('SCOPES', 100);
const RATE = intEnv('RATE', 50);
const HOLD_MINUTES = intEnv('DURATION', 40);
const SESSION = intEnv('SESSION', 120);

export const options: Options = {
  setupTimeout: '300s',
  scenarios: {
    subscribers: {
      executor: 'ramping-vus',
      exec: 'subscriber',
      startVUs: 0,
      stages: [
        { duration: '10m', target: SUBSCRIBERS },
        { duration: `${HOLD_MINUTES}m`, target: SUBSCRIBERS },
        { duration: '10m', target: 0 },
      ],
      gracefulRampDown: `${SESSION + 10}s`,
    },
    writers: {
      executor: 'constant-arrival-rate',
      exec: 'writer',
      rate: RATE,
      timeUnit: '1s',
      duration: `${HOLD_MINUTES + 20}m`,
      preAllocatedVUs: 10,
      maxVUs: Math.max(50, RATE),
    },
  },
  thresholds: {
    // The arrival-rate executor ran out of VUs: fewer writes than the run claims.
    dropped_iterations: ['count==0'],
    sync_ws_errors: ['count==0'],
    sync_delivery_ms: ['p(95)<50', 'p(99)<100'],
    sync_events_lost: ['count==0'],
    sync_events_duplicated: ['count==0'],
    sync_error_frames: ['count==0'],
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
  for (let i = 0; i < SCOPES; i++) scopes.push(createAgent(token, org, `k6 soak ${i}`));
  return { scopes };
}

// Per VU (each VU has its own JS runtime): cursors survive iterations, so every session after
// the first resumes from where the last one stopped.
const cursors: Cursors = {};

export async function subscriber(data: SetupData): Promise<void> {
  const scope = data.scopes[(__VU - 1) % data.scopes.length]!;
  await subscribe({
    token: tokenFor(`k6-soak-${__VU}`, ['agent:*']),
    scopes: [scope],
    cursors,
    holdMs: SESSION * 1000,
  });
}

export function writer(data: SetupData): void {
  const scope = data.scopes[Math.floor(Math.random() * data.scopes.length)]!;
  writeMessage(tokenFor(`k6-writer-${__VU % 32}`), scope, 'soak');
}

/** The end-of-test summary as text on stdout and JSON in SUMMARY_DIR (lib/summary.ts). */
export function handleSummary(data: SummaryData): Record<string, string> {
  return summaryOutputs('soak', data);
}
