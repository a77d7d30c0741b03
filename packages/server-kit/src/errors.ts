import { HTTP_ERROR_STATUS, type HttpErrorCode } from '@openagents/sync-protocol';

/**
 * The one error class inside a process: a stable wire `code`, an HTTP status derived from it, and
 * optional `details` (for example the fields a body got wrong). Boundaries turn anything thrown
 * into one of these with `toAppError`, and only its code, message and details reach the wire.
 */
export class AppError extends Error {
  readonly code: HttpErrorCode;
  readonly status: number;
  readonly details: unknown;

  constructor(code: HttpErrorCode, message: string, options: { details?: unknown; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = HTTP_ERROR_STATUS[code];
    this.details = options.details;
  }

  toBody(): { error: { code: string; message: string; details?: unknown } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

/** Postgres SQLSTATEs (and socket errors) that mean "the database is not reachable right now". */
const UNAVAILABLE_PG_CODES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '53300',
]);
const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
]);

export function isUnavailableError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_PG_CODES.has(code) || UNAVAILABLE_ERRNO.has(code)))
    return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|pool is draining|Cannot use a pool after calling end/i.test(
    err.message,
  );
}

/** Maps anything thrown to an AppError; unknown failures become `internal` with a generic message. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isUnavailableError(err)) {
    return new AppError('unavailable', 'The database is unavailable; retry with backoff', { cause: err });
  }
  return new AppError('internal', 'Internal error', { cause: err });
}
