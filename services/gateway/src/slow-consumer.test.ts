import { CLOSE_CODES } from '@openagents/sync-protocol';
import { describe, expect, it } from 'vitest';
import { silentLog, unitMetrics } from '../test/support/fake-log';
import { fakeSocket } from '../test/support/fake-socket';
import { ConnectionRegistry } from './connection-registry';
import { SlowConsumerPolicy, wakeWriters } from './slow-consumer';

const MAX = 1000;

function setup() {
  const connections = new ConnectionRegistry();
  const policy = new SlowConsumerPolicy({
    connections,
    metrics: unitMetrics(),
    log: silentLog,
    maxBackpressureBytes: MAX,
  });
  const socket = fakeSocket();
  connections.opened(socket.ws);
  return { connections, policy, socket };
}

describe('SlowConsumerPolicy', () => {
  it('closes with 1013 a socket whose buffer is over the limit, not one at it', () => {
    const { policy, socket } = setup();
    socket.buffered = MAX;
    policy.check(socket.ws);
    expect(socket.ended).toBeUndefined();
    socket.buffered = MAX + 1;
    policy.check(socket.ws);
    expect(socket.ended).toEqual({
      code: CLOSE_CODES.tryAgainLater,
      reason: 'too slow: resume from your cursor',
    });
  });

  it('gives catch-up frames an allowance of their size until the buffer is back under the limit', () => {
    const { policy, socket } = setup();
    socket.ud.catchUpBytes = 5000;
    socket.buffered = MAX + 4000;
    policy.check(socket.ws);
    expect(socket.ended).toBeUndefined();
    // The client read back under the limit: the allowance is spent.
    socket.buffered = MAX;
    policy.drained(socket.ws);
    expect(socket.ud.catchUpBytes).toBe(0);
    socket.buffered = MAX + 1;
    policy.check(socket.ws);
    expect(socket.ended?.code).toBe(CLOSE_CODES.tryAgainLater);
  });

  it('leaves a socket alone once its close handler ran', () => {
    const { connections, policy, socket } = setup();
    connections.closed(socket.ws);
    socket.buffered = MAX * 10;
    policy.check(socket.ws);
    policy.closeDropped(socket.ws);
    expect(socket.ended).toBeUndefined();
  });

  it('holds a paged bootstrap until the buffer drains to half the limit', async () => {
    const { policy, socket } = setup();
    socket.buffered = MAX / 2 + 1;
    let ready = false;
    const waiting = policy.writable(socket.ws, socket.ud).then(() => {
      ready = true;
    });
    socket.buffered = MAX / 2 + 1;
    policy.drained(socket.ws);
    await Promise.resolve();
    expect(ready).toBe(false);
    socket.buffered = MAX / 2;
    policy.drained(socket.ws);
    await waiting;
    expect(ready).toBe(true);
    expect(socket.ud.writableWaiters).toBeUndefined();
    socket.buffered = 0;
    await policy.writable(socket.ws, socket.ud);
  });

  it('lets waiting bootstraps go when the socket closes', async () => {
    const { policy, socket } = setup();
    socket.buffered = MAX;
    const waiting = policy.writable(socket.ws, socket.ud);
    socket.ud.closed = true;
    wakeWriters(socket.ud);
    await waiting;
    await policy.writable(socket.ws, socket.ud);
  });
});
