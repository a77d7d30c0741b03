import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { freePort } from '../../test/support/ports';
import { TEST_REDIS_URL, uniqueChannelPrefix } from '../../test/support/redis';
import type { PeerKind } from '../peers/peer-kind';
import { startSocketIoPeer } from '../peers/socketio-redis';
import { type PeerNode, startUwsLocalPeer } from '../peers/uws-local';
import { startWsRedisPeer } from '../peers/ws-redis';
import { createPeerTarget } from './peer-target';
import { silentProgress } from './progress';
import { FANOUT_DEFAULTS, runFanout } from './scenarios/fanout';

async function startPeer(kind: PeerKind): Promise<PeerNode[]> {
  const channelPrefix = uniqueChannelPrefix();
  switch (kind) {
    case 'uws-local':
      return [await startUwsLocalPeer({ port: await freePort() })];
    case 'ws-redis':
      return Promise.all(
        [0, 1].map(async () =>
          startWsRedisPeer({ port: await freePort(), redisUrl: TEST_REDIS_URL, channelPrefix }),
        ),
      );
    case 'socketio-redis':
      return Promise.all(
        [0, 1].map(async () =>
          startSocketIoPeer({ port: await freePort(), redisUrl: TEST_REDIS_URL, channelPrefix }),
        ),
      );
    default:
      throw new Error(`unknown peer ${String(kind)}`);
  }
}

const url = (node: PeerNode) => `http://127.0.0.1:${node.port}`;

describe.each(['uws-local', 'ws-redis', 'socketio-redis'] as const)('peer %s', (kind) => {
  let nodes: PeerNode[];
  beforeAll(async () => {
    nodes = await startPeer(kind);
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('delivers the fan-out workload to the driver without loss', async () => {
    const result = await runFanout(
      createPeerTarget(kind, nodes.map(url)),
      { ...FANOUT_DEFAULTS, connections: 20, scopes: 4, eventsPerSecond: 40, durationMs: 1500, batch: 2 },
      { workers: 1, progress: silentProgress },
    );
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
  }, 30_000);

  it('answers malformed, oversized and hostile publishes with 4xx and publishes nothing', async () => {
    const base = url(nodes[0]!);
    const post = (body: string) =>
      fetch(`${base}/publish`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    expect((await post('{not json')).status).toBe(400);
    expect((await post(JSON.stringify({ scope: 'agent:x', count: 501 }))).status).toBe(400);
    expect((await post(JSON.stringify({ scope: 42 }))).status).toBe(400);
    expect((await post(JSON.stringify({ scope: 'agent:x', contentBytes: 10 ** 9 }))).status).toBe(400);
    expect((await post(JSON.stringify({ scope: 'agent:x', pad: 'x'.repeat(300 * 1024) }))).status).toBe(413);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const ok = await post(JSON.stringify({ scope: 'agent:bad-input-check' }));
    expect(await ok.json()).toMatchObject({ first: 1, last: 1 });
  });
});

describe.each(['uws-local', 'ws-redis'] as const)('peer %s sockets', (kind) => {
  it('answers a malformed frame with an error frame and keeps the connection', async () => {
    const [node, ...rest] = await startPeer(kind);
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${node!.port}/sync`);
      const frames: { type: string; code?: string }[] = [];
      ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
      await new Promise((resolve) => ws.once('open', resolve));
      ws.send('{"type":"subscribe"');
      ws.send(JSON.stringify({ type: 'subscribe', scope: 'no spaces allowed' }));
      ws.send(JSON.stringify({ type: 'ping', t: 1 }));
      for (let i = 0; i < 100 && frames.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
      expect(frames).toEqual([
        expect.objectContaining({ type: 'error', code: 'bad_request' }),
        expect.objectContaining({ type: 'error', code: 'bad_request' }),
        { type: 'pong', t: 1 },
      ]);
      ws.close();
    } finally {
      await Promise.all([node!, ...rest].map((n) => n.stop()));
    }
  });
});
