/**
 * Acknowledgement latency of a streamed piece through the standalone server's uWS bridge
 * (`npm run bench:bridge-ack`): one Node `fetch` streaming upload (`duplex: 'half'`) per round,
 * PIECES pieces GAP_MS apart (a reply at ~30 tokens/s), each piece's latency from the moment its
 * line is handed to the request body to the moment its acknowledgement line is read.
 *
 * Variants, interleaved round by round in one run against one standalone server (one API, one
 * database, one pool):
 * - `standalone port`: the server's own port (the bridge streams the route);
 * - `bridge, buffered (before)`: a second uWS listener in this process bridging to the same API
 *   with `streamsBody` unset — the bridge's buffering path, which every body took before;
 * - `bridge, streamed`: that listener's twin with `streamsBody` set (the listener itself costs
 *   nothing the port does not).
 *
 * Env: BENCH_PIECES (60), BENCH_GAP_MS (33), BENCH_ROUNDS (3). Rewrites its docs/benchmarks.md
 * section.
 */

import uWS from 'uWebSockets.js';
import { cpus, loadavg } from 'node:os';
import { bridgeHttp } from '@openagents/sync-gateway-service';
import { APPEND_STREAM_CONTENT_TYPE } from '@openagents/sync-protocol';
import { createLogger } from '@openagents/sync-server-kit';
import { markdownTable, percentile, updateBenchmarkSection } from '../../../test/support/bench';
import { testAuth, tokenFor } from '../../../test/support/tokens';
import { streamsBody } from '../src/standalone';
import { startTestStandalone } from '../test/test-server';

const PIECES = Number(process.env.BENCH_PIECES ?? 60);
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 33);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const encoder = new TextEncoder();
const log = createLogger({ name: 'bench', level: 'silent' });

/** A uWS listener bridging every request to `fetch`, streaming the append-stream route or not. */
function listen(fetch: (request: Request) => Promise<Response>, streamed: boolean): Promise<number> {
  const app = uWS.App();
  app.any('/*', (res, req) =>
    bridgeHttp(res, req, fetch, {
      maxBodyBytes: 1024 * 1024,
      log,
      authenticate: (token) =>
        testAuth.verify(token).then(
          () => true,
          () => false,
        ),
      ...(streamed ? { streamsBody } : {}),
    }),
  );
  return new Promise((resolve) =>
    app.listen('127.0.0.1', 0, (socket) => resolve(uWS.us_socket_local_port(socket as never))),
  );
}

async function post(base: string, token: string, path: string, body: unknown): Promise<string> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return ((await res.json()) as { data: { id: string } }).data.id;
}

/** One upload of PIECES pieces; each piece's ack latency in ms. */
async function upload(base: string, token: string, org: string): Promise<number[]> {
  const agent = await post(base, token, '/api/agents', { org_id: org, name: 'bench' });
  const id = await post(base, token, '/api/messages', { agent_id: agent, role: 'assistant', content: '' });
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
    },
  });
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  const send = (i: number) => {
    const text = `tok${String(i).padStart(3, '0')} `;
    sentAt.set(i * text.length + text.length, performance.now());
    controller.enqueue(
      encoder.encode(`${JSON.stringify({ field: 'content', offset: i * text.length, text })}\n`),
    );
  };
  send(0);
  const answer = fetch(`${base}/api/messages/${id}/append-stream`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': APPEND_STREAM_CONTENT_TYPE },
    body,
    duplex: 'half',
  } as RequestInit);
  const reading = answer.then(async (res) => {
    let buffered = '';
    for await (const chunk of res.body!.pipeThrough(
      new TextDecoderStream(),
    ) as unknown as AsyncIterable<string>) {
      const now = performance.now();
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const ack = JSON.parse(buffered.slice(0, nl)) as { length?: number; done?: boolean };
        buffered = buffered.slice(nl + 1);
        if (ack.done || ack.length === undefined) continue;
        // One acknowledgement covers every piece its commit carried (up to `length`).
        for (const [end, at] of sentAt) {
          if (end > ack.length) continue;
          latencies.push(now - at);
          sentAt.delete(end);
        }
      }
    }
  });
  for (let i = 1; i < PIECES; i++) {
    await new Promise((r) => setTimeout(r, GAP_MS));
    send(i);
  }
  controller.close();
  await reading;
  if (latencies.length !== PIECES) throw new Error(`${latencies.length} of ${PIECES} pieces acknowledged`);
  return latencies;
}

async function main() {
  const loadStart = loadavg();
  const started = new Date();
  const { server, close } = await startTestStandalone('bench_bridge_ack');
  const api = server.parts().api;
  const variants = [
    { name: 'standalone port', base: server.info().url },
    { name: 'bridge, buffered (before)', base: `http://127.0.0.1:${await listen(api.fetch, false)}` },
    { name: 'bridge, streamed', base: `http://127.0.0.1:${await listen(api.fetch, true)}` },
  ];
  const org = crypto.randomUUID();
  const token = await tokenFor([`org:${org}`, 'agent:*']);
  const samples = new Map(variants.map((v) => [v.name, [] as number[]]));
  await upload(variants[0]!.base, token, org); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of variants) samples.get(v.name)!.push(...(await upload(v.base, token, org)));
  }
  await close();
  const loadEnd = loadavg();
  const before = percentile(samples.get('bridge, buffered (before)')!, 50);
  const rows = variants.map((v) => {
    const s = samples.get(v.name)!;
    const p50 = percentile(s, 50);
    return [v.name, s.length, p50.toFixed(1), percentile(s, 99).toFixed(1), (before / p50).toFixed(0)];
  });
  const table = markdownTable(['path', 'pieces', 'ack p50 ms', 'ack p99 ms', 'p50 before / p50'], rows);
  const fmt = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
  const markdown = `## Streaming upload through the standalone bridge (\`npm run bench:bridge-ack\`)

Measured ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} shared cores; load average
(1 / 5 / 15 min) **${fmt(loadStart)}** at the start, ${fmt(loadEnd)} at the end. One standalone server
(test database, in-process bus); per round one Node \`fetch\` streaming upload per path, ${PIECES} pieces
${GAP_MS} ms apart, ${ROUNDS} rounds interleaved. Latency: a piece's line handed to the request body →
its acknowledgement read. "Buffered (before)" is the bridge's buffering path, which every body took
before the append-stream route was streamed: nothing is acknowledged before the body ends, so a
piece waits for the rest of the reply (median ≈ half the reply's length).

${table}
`;
  console.log(markdown);
  updateBenchmarkSection('bridge-ack', markdown);
  process.exit(0);
}

await main();
