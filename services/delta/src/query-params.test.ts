import { DEFAULT_DELTA_LIMIT, MAX_DELTA_LIMIT } from '@openagents/sync-protocol';
import { AppError } from '@openagents/sync-server-kit';
import { describe, expect, it } from 'vitest';
import {
  MAX_HEADS_SCOPES,
  parseBootstrapQuery,
  parseDeltaQuery,
  parseHeadsBody,
  parseHeadsQuery,
} from './query-params';

const refusal = (fn: () => unknown): AppError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected a refusal');
};

describe('query parameters', () => {
  it('reads every scope in canonical form (lowercase uuid), the spelling the log is written under', () => {
    const upper = 'org:5E79A1C0-3B2D-4C1E-9F00-AA11BB22CC33';
    const lower = upper.toLowerCase();
    expect(parseBootstrapQuery({ scope: [upper] }).scope).toBe(lower);
    expect(parseDeltaQuery({ scope: [upper], lastSyncId: ['1'] }).scope).toBe(lower);
    expect(parseHeadsQuery({ scope: [upper, 'agent:x'] }).scope).toEqual([lower, 'agent:x']);
    expect(parseHeadsBody({ scopes: [upper] })).toEqual([lower]);
    expect(refusal(() => parseBootstrapQuery({ scope: ['ORG:x'] })).code).toBe('bad_request');
  });

  it('parses a delta query, defaulting the limit', () => {
    expect(parseDeltaQuery({ scope: ['org:a'], lastSyncId: ['0'] })).toEqual({
      scope: 'org:a',
      lastSyncId: 0,
      limit: DEFAULT_DELTA_LIMIT,
    });
    expect(
      parseDeltaQuery({
        scope: ['agent:b'],
        lastSyncId: ['9007199254740991'],
        limit: [String(MAX_DELTA_LIMIT)],
      }),
    ).toEqual({ scope: 'agent:b', lastSyncId: 9007199254740991, limit: MAX_DELTA_LIMIT });
  });

  it('names the offending parameter in details', () => {
    const err = refusal(() => parseDeltaQuery({ scope: ['org:a'], lastSyncId: ['-1'], limit: ['0'] }));
    expect(err.code).toBe('bad_request');
    expect(err.details).toEqual([
      { path: 'lastSyncId', message: expect.any(String) },
      { path: 'limit', message: expect.any(String) },
    ]);
    expect(err.message).toContain('lastSyncId, limit');
  });

  it('refuses repeated and unknown parameters', () => {
    expect(refusal(() => parseBootstrapQuery({ scope: ['org:a', 'org:b'] })).details).toEqual([
      { path: 'scope', message: 'must be given once' },
    ]);
    expect(
      JSON.stringify(refusal(() => parseBootstrapQuery({ scope: ['org:a'], x: ['1'] })).details),
    ).toContain('x');
  });

  it('accepts repeated scopes on heads, up to the maximum', () => {
    expect(parseHeadsQuery({ scope: ['org:a', 'org:b'] })).toEqual({ scope: ['org:a', 'org:b'] });
    const many = Array.from({ length: MAX_HEADS_SCOPES + 1 }, (_, i) => `org:${i}`);
    expect(refusal(() => parseHeadsQuery({ scope: many })).code).toBe('bad_request');
    expect(refusal(() => parseHeadsQuery({})).code).toBe('bad_request');
    expect(parseHeadsBody({ scopes: ['org:a'] })).toEqual(['org:a']);
    expect(refusal(() => parseHeadsBody({ scopes: ['org:*'] })).code).toBe('bad_request');
    expect(refusal(() => parseHeadsBody(null)).code).toBe('bad_request');
  });
});
