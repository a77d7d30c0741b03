/**
 * Reconnect storm: CLIENTS clients subscribe over SCOPES scopes; at DROP_AT every one of them
 * disconnects; a writer commits EVENTS_AWAY events per scope; at RESUME_AT all reconnect at once
 * and resume from their cursors. `storm_catch_up_ms` (max) is the time until the last client
 * has every event; target ≤ 3 s for 5,000 clients.
 *
 *   k6 run -e BASE_URL=http://localhost:8787 -e SYNC_JWT_SECRET=… -e CLIENTS=5000 loadtest/k6/reconnect-storm.ts
 */
import { sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { createAgent, uuid, writeMessages } from './lib/api.ts';
import { intEnv } from './lib/config.ts';
import { tokenFor } from './lib/jwt.ts';
import { type Cursors, subscribe } from './lib/subscriber.ts';
import { type SummaryData, summaryOutputs } from './lib/summary.ts';

const CLIENTS = intEnv('CLIENTS', 1000);
const SCOPES = intEnv('SCOPES', 50);
const EVENTS_BEFORE = intEnv('EVENTS_BEFORE', 2);
const EVENTS_AWAY = intEnv('EVENTS_AWAY', 5);
/** Seconds after setup when everyone drops, and when everyone comes back. */
const DROP_AT = intEnv('DROP_AT', 20);
const RESUME_AT = intEnv('RESUME_AT', 30);
const CATCH_UP_LIMIT = intEnv('CATCH_UP_LIMIT', 30);

const catchUpMs = new Trend('storm_catch_up_ms', true);
const notCaughtUp = new Counter('storm_not_caught_up');

export const options: Options = {
  setupTimeout: '300s',
  scenarios: {
    clients: {
      executor: 'per-vu-iterations',
      exec: 'client',
      vus: CLIENTS,
      iterations: 1,
      maxDuration: `${RESUME_AT + CATCH_UP_LIMIT + 60}s`,
    },
    writer: {
      executor: 'shared-iterations',
      exec: 'writer',
      vus: 1,
      iterations: 1,
      startTime: `${DROP_AT + 2}s`,
      maxDuration: `${RESUME_AT - DROP_AT}s`,
    },
  },
  thresholds: {
    sync_ws_errors: ['count==0'],
    storm_catch_up_ms: ['max<3000'],
    storm_not_caught_up: ['count==0'],
    sync_events_lost: ['count==0'],
    sync_events_duplicated: ['count==0'],
  },
};

export interface SetupData {
  scopes: string[];
  /** Epoch ms the phases are timed from. */
  t0: number;
}

export function setup(): SetupData {
  const token = tokenFor('k6-setup');
  const org = uuid();
  const scopes: string[] = [];
  for (let i = 0; i < SCOPES; i++) {
    const scope = createAgent(token, org, `k6 storm ${i}`);
    if (EVENTS_BEFORE > 0) writeMessages(token, scope, EVENTS_BEFORE, 'before');
    scopes.push(scope);
  }
  return { scopes, t0: Date.now() };
}

export async function client(data: SetupData): Promise<void> {
  const scope = data.scopes[(__VU - 1) % data.scopes.length]!;
  const token = tokenFor(`k6-client-${__VU}`, ['agent:*']);
  const cursors: Cursors = {};
  // Connected until DROP_AT, then the socket closes: every client at the same moment.
  await subscribe({
    token,
    scopes: [scope],
    cursors,
    holdMs: Math.max(1000, data.t0 + DROP_AT * 1000 - Date.now()),
  });
  const wait = data.t0 + RESUME_AT * 1000 - Date.now();
  if (wait > 0) sleep(wait / 1000);
  const target = EVENTS_BEFORE + EVENTS_AWAY;
  const resumed = Date.now();
  let caughtUpAt = 0;
  await subscribe({
    token,
    scopes: [scope],
    cursors,
    holdMs: CATCH_UP_LIMIT * 1000,
    onSync: (c) => {
      if ((c[scope] ?? 0) < target) return false;
      caughtUpAt = Date.now();
      return true;
    },
  });
  if (caughtUpAt === 0) notCaughtUp.add(1);
  else catchUpMs.add(caughtUpAt - resumed);
}

/** While everyone is away: EVENTS_AWAY events into every scope. */
export function writer(data: SetupData): void {
  const token = tokenFor('k6-writer');
  for (const scope of data.scopes) writeMessages(token, scope, EVENTS_AWAY, 'while away');
}

/** The end-of-test summary as text on stdout and JSON in SUMMARY_DIR (lib/summary.ts). */
export function handleSummary(data: SummaryData): Record<string, string> {
  return summaryOutputs('reconnect-storm', data);
}
