/**
 * A stand-in for a uWS socket in unit tests: records what is sent and how it was ended, with a
 * send buffer the test sets. Only what the gateway's modules call is there.
 */
import type { Principal } from '@openagents/sync-server-kit';
import type { Socket, UserData } from '../../src/connection-registry';
import { SEND_STATUS } from '../../src/uws';

export function userData(overrides: Partial<UserData> = {}): UserData {
  const principal: Principal = { sub: 'user-1', scopes: ['*'], exp: Math.floor(Date.now() / 1000) + 3600 };
  return {
    id: 1,
    principal,
    ip: '127.0.0.1',
    authGeneration: 0,
    subscriptions: [],
    tokens: 100,
    updatedAt: Date.now(),
    refusedInARow: 0,
    catchUpBytes: 0,
    closed: false,
    openedAt: Date.now(),
    writableWaiters: undefined,
    channel: undefined,
    ...overrides,
  };
}

export interface FakeSocket {
  ws: Socket;
  ud: UserData;
  /** Text of every frame sent, parsed. */
  frames: () => { type: string; code?: string; message?: string; t?: unknown }[];
  ended: { code: number; reason: string } | undefined;
  buffered: number;
  /** What the next `send` returns. */
  sendStatus: number;
}

export function fakeSocket(ud: UserData = userData()): FakeSocket {
  const sent: Buffer[] = [];
  const fake: FakeSocket = {
    ud,
    ended: undefined,
    buffered: 0,
    sendStatus: SEND_STATUS.success,
    frames: () => sent.map((b) => JSON.parse(b.toString('utf8'))),
    ws: undefined as unknown as Socket,
  };
  fake.ws = {
    getUserData: () => ud,
    getBufferedAmount: () => fake.buffered,
    end: (code: number, reason: string) => {
      fake.ended ??= { code, reason };
    },
    send: (payload: Buffer) => {
      sent.push(Buffer.from(payload));
      return fake.sendStatus;
    },
    subscribe: () => true,
    unsubscribe: () => true,
  } as unknown as Socket;
  return fake;
}
