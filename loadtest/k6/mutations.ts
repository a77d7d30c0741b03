/**
 * Write throughput and latency: RATE writes per second (open model) for DURATION seconds over
 * SCOPES agent scopes, one Message per request, or BATCH messages per POST /api/mutations.
 *
 *   k6 run -e BASE_URL=http://localhost:8787 -e SYNC_JWT_SECRET=… -e RATE=500 loadtest/k6/mutations.ts
 */

import { Counter, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { createAgent, readDelta, uuid, writeMessage, writeMessages } from './lib/api.ts';
import { intEnv } from './lib/config.ts';
import { tokenFor } from './lib/jwt.ts';
import { type SummaryData, summaryOutputs } from './lib/summary.ts';

const SCOPES = intEnv('SCOPES', 50);
const RATE = intEnv('RATE', 200);
const DURATION = intEnv('DURATION', 60);
const BATCH = intEnv('BATCH', 1);
const CONTENT = 'x'.repeat(intEnv('CONTENT_BYTES', 200));

const mutationMs = new Trend('mutation_ms', true);
const acknowledged = new Counter('mutations_acknowledged');
const logMismatch = new Counter('mutations_log_mismatch');

export const options: Options = {
  setupTimeout: '120s',
  scenarios: {
    writers: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: `${DURATION}s`,
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 10)),
      maxVUs: Math.max(100, RATE),
    },
  },
  thresholds: {
    mutation_ms: ['p(95)<100', 'p(99)<250'],
    checks: ['rate>0.999'],
    dropped_iterations: ['count==0'],
    mutations_log_mismatch: ['count==0'],
  },
};

export interface SetupData {
  scopes: string[];
  heads: Record<string, number>;
}

export function setup(): SetupData {
  const token = tokenFor('k6-setup');
  const org = uuid();
  const scopes: string[] = [];
  for (let i = 0; i < SCOPES; i++) scopes.push(createAgent(token, org, `k6 mutations ${i}`));
  const heads: Record<string, number> = {};
  for (const scope of scopes) heads[scope] = 0;
  return { scopes, heads };
}

export default function (data: SetupData): void {
  const scope = data.scopes[Math.floor(Math.random() * data.scopes.length)]!;
  const token = tokenFor(`k6-writer-${__VU % 32}`);
  const started = Date.now();
  if (BATCH <= 1) {
    if (writeMessage(token, scope, CONTENT)) acknowledged.add(1);
  } else {
    acknowledged.add(writeMessages(token, scope, BATCH, CONTENT).length);
  }
  mutationMs.add(Date.now() - started);
}

/** Every scope's log must be contiguous up to its head (read back through /sync/delta). */
export function teardown(data: SetupData): void {
  const token = tokenFor('k6-teardown');
  for (const scope of data.scopes) {
    let cursor = 0;
    for (let page = 0; page < 1000; page++) {
      const delta = readDelta(token, scope, cursor, 10_000);
      if (!delta) {
        logMismatch.add(1);
        break;
      }
      for (const event of delta.events) {
        if (event.id !== cursor + 1) logMismatch.add(1);
        cursor = event.id;
      }
      if (delta.events.length === 0 || cursor >= delta.latestSyncId) break;
    }
  }
}

/** The end-of-test summary as text on stdout and JSON in SUMMARY_DIR (lib/summary.ts). */
export function handleSummary(data: SummaryData): Record<string, string> {
  return summaryOutputs('mutations', data);
}
