import { describe, expect, it } from 'vitest';
import { APPEND_STREAM_DEFAULTS } from '../../services/api/src/stream-upload';
import { breakdown, DEFAULT_TOKENS_PER_APPEND, parseStackConfigs, parseTrace } from './stream-breakdown';

describe('parseStackConfigs', () => {
  it("defaults to one stack with the worker's coalescing, always passed explicitly", () => {
    const [only, ...rest] = parseStackConfigs(undefined);
    expect(rest).toEqual([]);
    expect(only!.apiEnv).toEqual({
      STREAM_COALESCE_MS: String(APPEND_STREAM_DEFAULTS.coalesceMs),
      STREAM_COALESCE_PIECES: String(APPEND_STREAM_DEFAULTS.coalescePieces),
    });
    expect(only!.gatewayEnv).toEqual({});
  });

  it('reads each configuration: coalescing for the worker, compression for the gateways', () => {
    const configs = parseStackConfigs(' coalesce=0, ws=dedicated-8kb ; coalesce=40,pieces=2,append=1 ;');
    expect(configs.map((c) => c.tokensPerAppend)).toEqual([DEFAULT_TOKENS_PER_APPEND, 1]);
    expect(configs.map((c) => [c.label, c.apiEnv, c.gatewayEnv])).toEqual([
      [
        `${DEFAULT_TOKENS_PER_APPEND} tokens per append, coalesce 0 ms, ws dedicated-8kb`,
        { STREAM_COALESCE_MS: '0', STREAM_COALESCE_PIECES: '0' },
        { WS_COMPRESSION: 'dedicated-8kb' },
      ],
      [
        '1 token per append, coalesce 40 ms, 2 pieces, ws gateway default',
        { STREAM_COALESCE_MS: '40', STREAM_COALESCE_PIECES: '2' },
        {},
      ],
    ]);
  });

  it('refuses what it does not know, naming it', () => {
    expect(() => parseStackConfigs('coalesce=-1')).toThrow(/coalesce=-1/);
    expect(() => parseStackConfigs('coalesce=')).toThrow(/coalesce=/);
    expect(() => parseStackConfigs('compress=on')).toThrow(/compress=on/);
    expect(() => parseStackConfigs('ws=a b')).toThrow(/ws=a b/);
    expect(() => parseStackConfigs('append=0')).toThrow(/append=0/);
  });
});

describe('breakdown', () => {
  // Two tokens of 9 code units per piece; tokens 0..5 generated at 1000, 1033, 1066, ... ms.
  const generatedAt = Float64Array.from({ length: 6 }, (_, k) => 1000 + 33 * k);
  const reply = { messageId: 'm1', generatedAt };
  const trace = [
    // The pieces, each read 2 ms after its token; pieces 0-17 and 18-35 and 36-53 committed apart.
    ...[0, 1, 2, 3, 4, 5].map((k) => JSON.stringify(['piece', 'm1', 9 * k, 9 * k + 9, 1002 + 33 * k])),
    JSON.stringify(['flush', 'm1', 0, 18, 1040]),
    JSON.stringify(['flush', 'm1', 18, 36, 1105]),
    JSON.stringify(['flush', 'm1', 36, 54, 1171]),
    JSON.stringify(['committed', 'm1', 0, 18, 1050]),
    JSON.stringify(['committed', 'm1', 18, 36, 1115]),
    // A replay of the same range later (a retried commit): the first mark counts.
    JSON.stringify(['committed', 'm1', 18, 36, 1300]),
    JSON.stringify(['committed', 'm1', 36, 54, 1181]),
    'not json',
    JSON.stringify(['other', 'm1', 0, 9, 1]),
  ].join('\n');
  const bus = JSON.stringify(['bus', 'm1', 18, 36, 1120]);

  it("joins each token with the first mark covering its offset: time since generation and the stage's own", () => {
    const lines = parseTrace([trace, bus]);
    const { traced, tokens, stages } = breakdown([reply, { messageId: 'untraced', generatedAt }], lines, {
      from: 0,
      to: 10_000,
      openingTokens: 2,
    });
    expect(traced).toBe(1);
    // Tokens 0 and 1 are the opening.
    expect(tokens).toBe(4);
    const by = Object.fromEntries(stages.map((s) => [s.stage, s]));
    expect(by['worker read']!.since).toMatchObject({ count: 4, min: 2, max: 2 });
    // Token 2 (1066) flushed at 1105: 39; token 3 (1099): 6; token 4 (1132) at 1171: 39; token 5: 6.
    expect(by['handed to commit']!.since).toMatchObject({ count: 4, min: 6, max: 39 });
    expect(by['handed to commit']!.own).toMatchObject({ count: 4, min: 4, max: 37 });
    // No round marks: the next stage's own time is not taken across the hole.
    expect(by['round start']!.since.count).toBe(0);
    expect(by.committed!.since).toMatchObject({ count: 4, min: 16, max: 49 });
    expect(by.committed!.own.count).toBe(0);
    // Only tokens 2 and 3 reached the tap: 1120 - 1066 and 1120 - 1099.
    expect(by['on Redis']!.since).toMatchObject({ count: 2, min: 21, max: 54 });
  });

  it('counts only tokens generated within the window', () => {
    const { tokens, stages } = breakdown([reply], parseTrace([trace]), {
      from: 1099,
      to: 1132,
      openingTokens: 0,
    });
    expect(tokens).toBe(2);
    expect(stages[0]!.since.count).toBe(2);
  });
});
