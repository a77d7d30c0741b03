import { AppError } from '@openagents/sync-server-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from './bootstrap-cursor';

const SCOPE = 'agent:7f1c0d2e-0000-4000-8000-000000000001';

describe('bootstrap cursors', () => {
  it('round-trip every position', () => {
    fc.assert(
      fc.property(
        fc.record({
          lastSyncId: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
          model: fc.integer({ min: 0, max: 4 }),
          after: fc.option(fc.record({ createdUs: fc.maxSafeInteger(), id: fc.uuid() }), { nil: undefined }),
        }),
        (cursor) => {
          const { after, ...rest } = cursor;
          const value = after ? { ...rest, after } : rest;
          expect(decodeCursor(SCOPE, encodeCursor(SCOPE, value))).toEqual(value);
        },
      ),
    );
  });

  it('refuses anything else with bad_request, never another error', () => {
    const real = encodeCursor(SCOPE, {
      lastSyncId: 3,
      model: 1,
      after: { createdUs: 1, id: '00000000-0000-4000-8000-000000000000' },
    });
    const forged = fc
      .oneof(
        fc.constant(null),
        fc.integer(),
        fc.array(fc.integer(), { maxLength: 5 }),
        // Cursor-shaped objects with any field wrong or missing.
        fc.record(
          {
            v: fc.oneof(fc.constant(1), fc.integer()),
            s: fc.string({ maxLength: 12 }),
            l: fc.oneof(fc.integer(), fc.double()),
            m: fc.oneof(fc.integer({ min: -2, max: 20 }), fc.string()),
            t: fc.oneof(fc.integer(), fc.double()),
            i: fc.oneof(fc.uuid(), fc.string()),
            x: fc.integer(),
          },
          { requiredKeys: [] },
        ),
      )
      .map((v) => Buffer.from(JSON.stringify(v) ?? '').toString('base64url'));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 600 }),
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
          forged,
        ),
        (text) => {
          // Only a cursor this module made can decode; a random one would have to guess the tag.
          if (text === real) return true;
          try {
            decodeCursor(SCOPE, text);
            return false;
          } catch (err) {
            return err instanceof AppError && err.code === 'bad_request';
          }
        },
      ),
      { numRuns: 300 },
    );
    expect(() => decodeCursor('agent:other', real)).toThrow(/another scope/);
  });
});
