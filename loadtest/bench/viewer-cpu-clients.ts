import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  ClientConnection,
  type ConnectionCounters,
  newConnectionCounters,
} from '../driver/client-connection';
import { LeanWebSocket } from '../driver/lean-websocket';
import type { ViewerTransport } from '../driver/worker-messages';

// Child process of viewer-cpu.ts: the stream scenario's viewers (ClientConnection with stream
// tracking: cursors, texts by offset, latency per token) over one transport, in one thread.
// Env: URL, TRANSPORT (ws | lean). Commands over IPC: open (scopes), report.

const counters: ConnectionCounters = newConnectionCounters(false, 0);
const transport = process.env.TRANSPORT as ViewerTransport;
// As in the driver's viewer threads (client-worker.ts), when asked.
if (process.env.LOOP_MONITOR) monitorEventLoopDelay({ resolution: 1 }).enable();
let connections: ClientConnection[] = [];

process.on('message', async (message: { cmd: 'open'; scopes: string[] } | { cmd: 'report' }) => {
  if (message.cmd === 'open') {
    if (process.env.TRANSPORT === 'floor') {
      // The floor: the lean client's sockets and frame walk, and nothing done with a frame.
      let open = 0;
      for (const scope of message.scopes) {
        const ws: LeanWebSocket = new LeanWebSocket(process.env.URL!, {
          open: () => {
            open++;
            ws.send(JSON.stringify({ type: 'subscribe', scope }));
          },
          message: () => {
            counters.frames++;
          },
          error: () => {},
          close: () => {},
        });
      }
      while (open < message.scopes.length) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 500));
      process.send?.({ type: 'opened' });
      return;
    }
    connections = message.scopes.map(
      (scope) =>
        new ClientConnection(
          { url: process.env.URL!, protocol: 'sync', scopes: [scope] },
          counters,
          () => {},
          transport,
        ),
    );
    for (let i = 0; i < connections.length; i += 50)
      await Promise.all(connections.slice(i, i + 50).map((c) => c.open()));
    while (connections.some((c) => !c.isReady)) await new Promise((r) => setTimeout(r, 20));
    process.send?.({ type: 'opened' });
  } else {
    const s = counters.streams!;
    process.send?.({
      type: 'report',
      frames: counters.frames,
      delivered: counters.delivered,
      lost: counters.lost,
      duplicates: counters.duplicates,
      errors: counters.errors,
      tokens: s.tokens,
      gaps: s.gaps,
      skipped: s.skipped,
      appendP99: s.appendLatency.percentile(99),
      digests: connections.flatMap((c) => c.texts?.digests() ?? []).map((d) => d.join('|')),
    });
  }
});
process.on('disconnect', () => process.exit(0));
