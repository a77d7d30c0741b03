import uWS from 'uWebSockets.js';
import { randomUUID } from 'node:crypto';
import { createPlainUwsApp } from '../../services/gateway/bench/plain-uws-app';
import { encodeToken } from '../driver/stream-text';

// Child process of viewer-cpu.ts: a plain uWS app (the gateway's wire frames, nothing else) that,
// once told to start, publishes append `sync` frames to every scope's topic in rounds every 10 ms:
// each scope gets one event carrying `TOKENS_PER_APPEND` tokens every TOKENS_PER_APPEND / TPS
// seconds, with the shape, key order and offsets the real stack sends (services/api's events as
// the gateway forwards them). Env: PORT (0 = any), SCOPES, TPS (30), TOKENS_PER_APPEND (2).

const TPS = Number(process.env.TPS ?? 30);
const PER_APPEND = Number(process.env.TOKENS_PER_APPEND ?? 2);
const app = createPlainUwsApp();

interface Reply {
  scope: string;
  scopeJson: string;
  modelId: string;
  id: number;
  offset: number;
  dueAt: number;
}
let replies: Reply[] = [];
let timer: NodeJS.Timeout | undefined;
let published = 0;

function round(): void {
  const now = Date.now();
  const iso = new Date(now).toISOString();
  const token = encodeToken(now);
  const text = token.repeat(PER_APPEND);
  for (const r of replies) {
    if (r.dueAt > now) continue;
    r.dueAt += (PER_APPEND * 1000) / TPS;
    r.id++;
    const event = `{"id":${r.id},"data":{"text":"${text}","field":"content","offset":${r.offset},"updated_at":"${iso}"},"model":"Message","scope":${r.scopeJson},"action":"append","model_id":"${r.modelId}","created_at":"${iso}","mutationId":null}`;
    r.offset += text.length;
    app.publish(
      `scope:${r.scope}`,
      `{"type":"sync","scope":${r.scopeJson},"events":[${event}],"latestSyncId":${r.id}}`,
      false,
    );
    published++;
  }
}

process.on('message', (message: { cmd: 'start'; scopes: string[] } | { cmd: 'stop' }) => {
  if (message.cmd === 'start') {
    const now = Date.now();
    replies = message.scopes.map((scope, i) => ({
      scope,
      scopeJson: JSON.stringify(scope),
      modelId: randomUUID(),
      id: 0,
      offset: 0,
      dueAt: now + ((i / message.scopes.length) * PER_APPEND * 1000) / TPS,
    }));
    timer = setInterval(round, 10);
  } else {
    clearInterval(timer);
    process.send?.({ type: 'stopped', published });
  }
});

app.listen(Number(process.env.PORT ?? 0), (socket) => {
  if (!socket) {
    process.stderr.write('viewer-cpu server could not listen\n');
    process.exit(1);
  }
  process.send?.({ type: 'ready', port: uWS.us_socket_local_port(socket) });
});
process.on('disconnect', () => process.exit(0));
