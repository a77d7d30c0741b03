import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClientFrame, MAX_PING_T_LENGTH, PingFrame, PongFrame } from './frames';

const deep = (levels: number): unknown => JSON.parse(`${'['.repeat(levels)}${']'.repeat(levels)}`);

describe('ping (contract v1.1)', () => {
  it('accepts a finite number or a string of at most 64 characters as t', () => {
    for (const t of [0, -0, 1e308, -1.5, Date.now(), '', 'x'.repeat(MAX_PING_T_LENGTH)]) {
      expect(ClientFrame.safeParse({ type: 'ping', t }).success).toBe(true);
      expect(PongFrame.safeParse({ type: 'pong', t }).success).toBe(true);
    }
    expect(ClientFrame.safeParse({ type: 'ping' }).success).toBe(true);
  });

  it('refuses every other t: nothing unbounded is echoed', () => {
    const refused = [
      'x'.repeat(MAX_PING_T_LENGTH + 1),
      Number.POSITIVE_INFINITY,
      Number.NaN,
      null,
      true,
      { still: 'here' },
      [1],
      deep(6000),
    ];
    for (const t of refused) {
      expect(PingFrame.safeParse({ type: 'ping', t }).success).toBe(false);
      expect(PongFrame.safeParse({ type: 'pong', t }).success).toBe(false);
    }
  });

  it('whatever parses as a ping serialises to a small pong (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (t) => {
        const parsed = ClientFrame.safeParse({ type: 'ping', t });
        if (!parsed.success || parsed.data.type !== 'ping') return;
        const pong = JSON.stringify({ type: 'pong', t: parsed.data.t });
        expect(pong.length).toBeLessThan(4 * MAX_PING_T_LENGTH + 64);
      }),
      { numRuns: 500 },
    );
  });
});

describe('auth frame', () => {
  it('carries a non-empty bounded token', () => {
    expect(ClientFrame.safeParse({ type: 'auth', token: 'a.b.c' }).success).toBe(true);
    expect(ClientFrame.safeParse({ type: 'auth', token: '' }).success).toBe(false);
    expect(ClientFrame.safeParse({ type: 'auth', token: 42 }).success).toBe(false);
    expect(ClientFrame.safeParse({ type: 'auth', token: 'x'.repeat(40_000) }).success).toBe(false);
  });
});
