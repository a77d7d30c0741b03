/**
 * A write the server refused with a final answer (a 4xx other than 429, or 401 after a token
 * refresh). The optimistic change has been rolled back when this is thrown.
 *
 * @example
 * try { await client.insert('Agent', { org_id, name: '' }); }
 * catch (e) { if (e instanceof MutationError) console.log(e.status, e.code, e.body); }
 */
export class MutationError extends Error {
  override readonly name = 'MutationError';
  readonly mutationId: string;
  /** HTTP status, e.g. 400. */
  readonly status: number;
  /** `error.code` of the body, e.g. `invalid_body` (or `http_<status>` when the body had none). */
  readonly code: string;
  /** The error body as the server sent it: `{ error: { code, message, details? } }`. */
  readonly body: unknown;

  constructor(mutationId: string, status: number, body: unknown) {
    const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof error?.code === 'string' ? error.code : `http_${status}`;
    super(typeof error?.message === 'string' ? error.message : `mutation rejected with HTTP ${status}`);
    this.mutationId = mutationId;
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** The client was closed before the mutation was confirmed (it stays in storage, if any). */
export class SyncClosedError extends Error {
  override readonly name = 'SyncClosedError';
  constructor() {
    super('sync client closed');
  }
}
