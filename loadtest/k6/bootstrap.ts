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
  const res = http.get(`${DELTA_URL}/sync/bootstrap?scope=${encodeURIComponent(data.scope)}`, {
    headers: { authorization: `Bearer ${tokenFor(`k6-reader-${__VU}`, ['agent:*'])}` },
    tags: { name: 'bootstrap' },
    timeout: '60s',
  });
  check(res, {
    'bootstrap 200': (r) => r.status === 200,
    'bootstrap holds every record at the head': (r) => {
      const body = r.json() as unknown as { models: { Message?: unknown[] }; lastSyncId: number };
      return body.models.Message?.length === RECORDS && body.lastSyncId === RECORDS;
    },
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
      const frame = JSON.parse(String(event?.data)) as { type: string; models?: { Message?: unknown[] } };
      if (frame.type !== 'bootstrap') return;
      wsBootstrapMs.add(Date.now() - started);
      records = frame.models?.Message?.length ?? 0;
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
