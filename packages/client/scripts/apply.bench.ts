/**
 * How long the client takes to apply what the server sends: one bootstrap frame of N records
 * (parse + validate + replace + publish), then live `sync` frames of one event each, with a
 * subscriber attached and a pending write on top. Short by design (a few seconds).
 *
 *   node --import tsx packages/client/scripts/apply.bench.ts [records=10000] [events=2000]
 */
import { randomUUID } from 'node:crypto';
import { createSyncClient } from '../src/index';

const records = Number(process.argv[2] ?? 10_000);
const events = Number(process.argv[3] ?? 2_000);
const agentId = randomUUID();
const scope = `agent:${agentId}`;
const now = new Date().toISOString();
const messages = Array.from({ length: records }, (_, i) => ({
  id: randomUUID(),
  agent_id: agentId,
  role: i % 2 ? 'assistant' : 'user',
  content: 'x'.repeat(200),
  created_at: now,
  updated_at: now,
}));
const empty = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [] };

const client = createSyncClient({
  url: 'http://127.0.0.1:1',
  autoConnect: false,
  fetch: () => new Promise(() => {}),
});
let notifications = 0;
client.subscribe(() => notifications++);
client.subscribeScope(scope);
client
  .mutate({
    model: 'Message',
    action: 'insert',
    data: { agent_id: agentId, role: 'user', content: 'pending' },
  })
  .catch(() => {});

const bootstrap = JSON.stringify({
  type: 'bootstrap',
  scope,
  models: { ...empty, Message: messages },
  lastSyncId: records,
});
let t = performance.now();
client.receiveFrame(bootstrap);
const bootstrapMs = performance.now() - t;

const frames = Array.from({ length: events }, (_, i) => {
  const target = messages[i % records]!;
  return JSON.stringify({
    type: 'sync',
    scope,
    latestSyncId: records + i + 1,
    events: [
      {
        id: records + i + 1,
        scope,
        model: 'Message',
        model_id: target.id,
        action: 'update',
        data: { content: `edit ${i}`, updated_at: now },
        mutationId: null,
        created_at: now,
      },
    ],
  });
});
// One frame per task, as a browser delivers WebSocket messages: each is published on its own
// (getState() flushes, like the microtask after each message event would).
const half = Math.floor(events / 2);
t = performance.now();
for (const f of frames.slice(0, half)) {
  client.receiveFrame(f);
  client.getState();
}
const perFrameMs = performance.now() - t;
// A burst handled in one task (many frames in one TCP read, as `ws` in Node delivers them):
// applied one by one, published once.
t = performance.now();
for (const f of frames.slice(half)) client.receiveFrame(f);
client.getState();
const burstMs = performance.now() - t;

const state = client.getState();
if (state.scopes[scope]?.lastSyncId !== records + events) throw new Error('cursor did not advance');
console.log(
  `bootstrap of ${records} records (${(bootstrap.length / 1e6).toFixed(1)} MB JSON): ${bootstrapMs.toFixed(0)} ms`,
);
console.log(
  `${half} live frames, each published: ${perFrameMs.toFixed(0)} ms, ${((perFrameMs * 1000) / half).toFixed(0)} µs per frame`,
);
console.log(
  `${events - half} live frames in one burst: ${burstMs.toFixed(0)} ms, ${((burstMs * 1000) / (events - half)).toFixed(0)} µs per frame`,
);
console.log(`listener notifications: ${notifications}`);
await client.close();
