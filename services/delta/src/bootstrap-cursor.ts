import { createHash } from 'node:crypto';
import { AppError } from '@openagents/sync-server-kit';
import { z } from 'zod';

/**
 * Where the next bootstrap page starts, and the id the whole bootstrap resumes the log from.
 *
 * - `lastSyncId`: the head read with the FIRST page; every page of one bootstrap reports it (see
 *   docs/delta.md, "Paged bootstraps", for why it must be the first page's and not each page's).
 * - `model`: index into the scope's model order (`scopeModels`).
 * - `after`: the last record sent of that model, as its keyset position (created_at in
 *   microseconds since the epoch, id); absent when the model starts from its beginning.
 *
 * On the wire it is opaque: base64url of a small JSON object carrying a tag of the scope it was
 * made for. It is validated, not signed: a hand-made cursor can only select a position in the
 * keyset order of a scope the token may read anyway, and its lastSyncId is checked against the
 * scope's log (ahead of the head: 400; behind the retained log: 410), so a forged one harms no
 * one but its author, and a garbled one is a 400.
 */
export interface BootstrapCursor {
  lastSyncId: number;
  model: number;
  after?: KeysetPosition;
}

export interface KeysetPosition {
  /** created_at in whole microseconds since the Unix epoch (exact: Postgres keeps microseconds). */
  createdUs: number;
  id: string;
}

/** Longest cursor accepted; real ones are about 150 characters. */
export const MAX_CURSOR_LENGTH = 512;

const Wire = z
  .object({
    v: z.literal(1),
    s: z.string().length(11),
    l: z.number().int().nonnegative().refine(Number.isSafeInteger),
    m: z.number().int().min(0).max(16),
    t: z.number().int().refine(Number.isSafeInteger).optional(),
    i: z
      .string()
      .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      .optional(),
  })
  .strict()
  .refine((w) => (w.t === undefined) === (w.i === undefined), 't and i come together');

/** Makes the opaque form of `cursor` for `scope`. */
export function encodeCursor(scope: string, cursor: BootstrapCursor): string {
  const wire = {
    v: 1,
    s: scopeTag(scope),
    l: cursor.lastSyncId,
    m: cursor.model,
    ...(cursor.after ? { t: cursor.after.createdUs, i: cursor.after.id } : {}),
  };
  return Buffer.from(JSON.stringify(wire)).toString('base64url');
}

/**
 * Reads a cursor handed back by a client; throws AppError `bad_request` for anything that is not
 * a cursor this service made for `scope` (never a 500, whatever the bytes).
 */
export function decodeCursor(scope: string, text: string): BootstrapCursor {
  const invalid = (why: string) =>
    new AppError('bad_request', `Invalid bootstrap cursor: ${why}; start again without one`, {
      details: [{ path: 'cursor', message: why }],
    });
  if (text.length === 0 || text.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(text)) {
    throw invalid('not a cursor');
  }
  let json: unknown;
  try {
    const bytes = Buffer.from(text, 'base64url');
    // Only the canonical spelling: Buffer ignores stray trailing characters, a cursor may not.
    if (bytes.toString('base64url') !== text) throw invalid('not a cursor');
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('not a cursor');
  }
  const parsed = Wire.safeParse(json);
  if (!parsed.success) throw invalid('not a cursor');
  const wire = parsed.data;
  if (wire.s !== scopeTag(scope)) throw invalid(`made for another scope than ${scope}`);
  return {
    lastSyncId: wire.l,
    model: wire.m,
    ...(wire.t !== undefined && wire.i !== undefined ? { after: { createdUs: wire.t, id: wire.i } } : {}),
  };
}

/** 64 bits of the scope's SHA-256: binds a cursor to its scope without carrying the scope. */
function scopeTag(scope: string): string {
  return createHash('sha256').update(scope).digest('base64url').slice(0, 11);
}
