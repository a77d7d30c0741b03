/**
 * Bootstrap of a large scope: setup seeds RECORDS Messages into one agent scope (batches of 500),
 * then VUS clients fetch GET /sync/bootstrap repeatedly, and WS_CLIENTS subscribe over the
 * WebSocket without a cursor; each answer must hold every record at lastSyncId = RECORDS.
 *
 *   k6 run -e BASE_URL=http://localhost:8787 -e SYNC_JWT_SECRET=… -e RECORDS=10000 loadtest/k6/bootstrap.ts
 */
import { check } from 'k6';
import http from 'k6/http';
import { Trend } from 'k6/metrics';
import type { Options } from 'k6/options';
import { setTimeout } from 'k6/timers';
import { createAgent, uuid, writeMessages } from './lib/api.ts';
import { DELTA_URL, intEnv } from './lib/config.ts';
import { tokenFor } from './lib/jwt.ts';
import { openSocket } from './lib/subscriber.ts';
import { type SummaryData, summaryOutputs } from './lib/summary.ts';

const RECORDS = intEnv('RECORDS', 10_000);
const VUS = intEnv('VUS', 4);
const DURATION = intEnv('DURATION', 30);
const WS_CLIENTS = intEnv('WS_CLIENTS', 10);

const wsBootstrapMs = new Trend('bootstrap_ws_ms', true);

export const options: Options = {
  setupTimeout: '600s',
  scenarios: {
    http_bootstrap: { executor: 'constant-vus', exec: 'httpBootstrap', vus: VUS, duration: `${DURATION}s` },
    ws_bootstrap: {
      executor: 'per-vu-iterations',
      exec: 'wsBootstrap',
      vus: WS_CLIENTS,
      iterations: 1,
      maxDuration: `${DURATION}s`,
    },
  },
  thresholds: {
    'http_req_duration{name:bootstrap}': ['p(95)<2000'],
    bootstrap_ws_ms: ['p(95)<3000'],
    checks: ['rate==1'],
  },
};

export interface SetupData {
  scope: string;
}

export function setup(): SetupData {
  const token = tokenFor('k6-setup');
  const scope = createAgent(token, uuid(), 'k6 bootstrap');
  for (let left = RECORDS; left > 0; left -= 500)
    writeMessages(token, scope, Math.min(500, left), 'seed '.repeat(40));
  return { scope };
}

export function httpBootstrap(data: SetupData): void {
  // Every page (contract v1.1: a large scope answers in pages linked by nextCursor).
  const token = tokenFor(`k6-reader-${__VU}`, ['agent:*']);
  const base = `${DELTA_URL}/sync/bootstrap?scope=${encodeURIComponent(data.scope)}`;
  let records = 0;
  let lastSyncId = -1;
  let cursor: string | undefined;
  for (let page = 0; page < 10_000; page++) {
    const res = http.get(cursor === undefined ? base : `${base}&cursor=${encodeURIComponent(cursor)}`, {
      headers: { authorization: `Bearer ${token}` },
      tags: { name: 'bootstrap' },
      timeout: '60s',
    });
    if (!check(res, { 'bootstrap 200': (r) => r.status === 200 })) return;
    const body = res.json() as unknown as {
      models: { Message?: unknown[] };
      lastSyncId: number;
      nextCursor?: string;
    };
    records += body.models.Message?.length ?? 0;
    lastSyncId = body.lastSyncId;
    cursor = body.nextCursor;
    if (cursor === undefined) break;
  }
  check(records, {
    'bootstrap holds every record at the head': (n) => n === RECORDS && lastSyncId === RECORDS,
  });
}

export async function wsBootstrap(data: SetupData): Promise<void> {
  const token = tokenFor(`k6-ws-${__VU}`, ['agent:*']);
  let records = -1;
  const started = Date.now();
  await new Promise<void>((resolve) => {
    const socket = openSocket(token);
    socket.onopen = () => socket.send(JSON.stringify({ type: 'subscribe', scope: data.scope }));
    socket.onmessage = (event) => {
      const frame = JSON.parse(String(event?.data)) as {
        type: string;
        more?: boolean;
        models?: { Message?: unknown[] };
      };
      if (frame.type !== 'bootstrap') return;
      records = Math.max(records, 0) + (frame.models?.Message?.length ?? 0);
      // Pages (v1.1) carry `more: true` until the last one.
      if (frame.more) return;
      wsBootstrapMs.add(Date.now() - started);
      socket.close();
    };
    socket.onclose = () => resolve();
    setTimeout(() => socket.close(), 60_000);
  });
  check(records, { 'websocket bootstrap holds every record': (n) => n === RECORDS });
}

/** The end-of-test summary as text on stdout and JSON in SUMMARY_DIR (lib/summary.ts). */
export function handleSummary(data: SummaryData): Record<string, string> {
  return summaryOutputs('bootstrap', data);
}
