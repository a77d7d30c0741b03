import { CLOSE_CODES } from '@openagents/sync-protocol';
import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { testAuth } from '../../../test/support/tokens';
import { FakeLog, SCOPE, silentLog, unitMetrics } from '../test/support/fake-log';
import { fakeSocket } from '../test/support/fake-socket';
import { ConnectionRegistry, type Socket } from './connection-registry';
import { ExpiryWheel } from './expiry-wheel';
import { createFrameHandler } from './frame-handler';
import { FrameWriter } from './frame-writer';
import { handlerFailure } from './handler-failure';
import { ScopeRegistry } from './scope-registry';
import { SlowConsumerPolicy } from './slow-consumer';
import { SocketChannel } from './socket-channel';
import type { TemplatedApp } from './uws';

const config = {
  MAX_FRAME_BYTES: 1024,
  FRAME_RATE_PER_SECOND: 10,
  FRAME_BURST: 3,
  MAX_SUBSCRIPTIONS_PER_CONNECTION: 2,
};

function setup() {
  const metrics = unitMetrics();
  const connections = new ConnectionRegistry();
  const slowConsumers = new SlowConsumerPolicy({
    connections,
    metrics,
    log: silentLog,
    maxBackpressureBytes: 1 << 20,
  });
  let writer: FrameWriter | undefined;
  const failed = handlerFailure({
    connections,
    metrics,
    log: silentLog,
    sendError: (ws, code, message) => writer?.sendError(ws, code, message),
  });
  writer = new FrameWriter({ app: {} as TemplatedApp, connections, metrics, slowConsumers, failed });
  const log = new FakeLog();
  const streams = new ScopeRegistry({
    bus: createMemoryBus(),
    reads: log,
    metrics,
    log: silentLog,
    holdMs: 100,
    fanOut: () => {},
  });
  const expiries = new ExpiryWheel<Socket>(() => {});
  const handle = createFrameHandler({
    config,
    auth: testAuth,
    metrics,
    log: silentLog,
    writer,
    expiries,
    subscriptions: { streams, reads: log, metrics, log: silentLog },
    failed,
  });
  const socket = fakeSocket();
  socket.ud.tokens = config.FRAME_BURST;
  socket.ud.channel = new SocketChannel(socket.ws, socket.ud, {
    connections,
    writer,
    slowConsumers,
    metrics,
  });
  connections.opened(socket.ws);
  const text = (frame: unknown) => {
    const bytes = Buffer.from(typeof frame === 'string' ? frame : JSON.stringify(frame));
    handle(socket.ws, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length), false);
  };
  return { socket, handle, text, expiries };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date('2026-12-01T12:00:00Z'));
});
afterEach(() => {
  vi.useRealTimers();
});

describe('frame handler', () => {
  it('closes with 1009 on a frame over MAX_FRAME_BYTES', () => {
    const { socket, text } = setup();
    text('x'.repeat(config.MAX_FRAME_BYTES + 1));
    expect(socket.ended?.code).toBe(CLOSE_CODES.messageTooBig);
  });

  it('answers binary frames, bad JSON and unknown shapes with bad_request and stays open', () => {
    const { socket, handle, text } = setup();
    handle(socket.ws, new ArrayBuffer(4), true);
    text('{not json');
    text({ type: 'subscribe' });
    expect(socket.frames().map((f) => [f.type, f.code])).toEqual([
      ['error', 'bad_request'],
      ['error', 'bad_request'],
      ['error', 'bad_request'],
    ]);
    expect(socket.frames()[2]!.message).toMatch(/^Invalid frame: scope: /);
    expect(socket.ended).toBeUndefined();
  });

  it('refuses frames over the rate with rate_limited, then closes a client that keeps on with 1008', () => {
    const { socket, text } = setup();
    for (let i = 0; i < config.FRAME_BURST; i++) text({ type: 'ping', t: i });
    expect(socket.frames().map((f) => f.type)).toEqual(['pong', 'pong', 'pong']);
    text({ type: 'ping' });
    expect(socket.frames().at(-1)).toMatchObject({ type: 'error', code: 'rate_limited' });
    text({ type: 'ping' });
    expect(socket.ended).toBeUndefined();
    text({ type: 'ping' });
    expect(socket.ended?.code).toBe(CLOSE_CODES.policyViolation);
  });

  it('refills the bucket with time', () => {
    const { socket, text } = setup();
    for (let i = 0; i < config.FRAME_BURST; i++) text({ type: 'ping' });
    vi.advanceTimersByTime(1000 / config.FRAME_RATE_PER_SECOND);
    text({ type: 'ping', t: 'again' });
    expect(socket.frames().at(-1)).toEqual({ type: 'pong', t: 'again' });
  });

  it('subscribes once per scope and refuses more than MAX_SUBSCRIPTIONS_PER_CONNECTION scopes', async () => {
    const { socket, text: send } = setup();
    // One frame a second: well under the rate, so only the subscription limit answers.
    const text = (frame: unknown) => {
      vi.advanceTimersByTime(1000);
      send(frame);
    };
    text({ type: 'subscribe', scope: SCOPE });
    text({ type: 'subscribe', scope: SCOPE.toUpperCase().replace('ORG', 'org') });
    expect(socket.ud.subscriptions.map((s) => s.scope)).toEqual([SCOPE]);
    text({ type: 'subscribe', scope: 'agent:00000000-0000-4000-8000-000000000001' });
    text({ type: 'subscribe', scope: 'agent:00000000-0000-4000-8000-000000000002' });
    expect(socket.frames().at(-1)).toMatchObject({ type: 'error', code: 'too_many_subscriptions' });
    expect(socket.ud.subscriptions).toHaveLength(2);
    text({ type: 'unsubscribe', scope: SCOPE });
    expect(socket.ud.subscriptions).toHaveLength(1);
  });
});
