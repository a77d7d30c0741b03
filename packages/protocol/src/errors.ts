import * as z from 'zod/mini';

/** Error codes on the HTTP wire, with the status each one travels with. */
export const HTTP_ERROR_STATUS = {
  bad_request: 400,
  invalid_body: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  idempotency_conflict: 409,
  /** An append whose offset is not the field's current length (details.length says what it is). */
  offset_mismatch: 409,
  reset_required: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;
export type HttpErrorCode = keyof typeof HTTP_ERROR_STATUS;

/** `{ "error": { "code", "message", "details"? } }` — every HTTP error body. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.optional(z.unknown()),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

/** Codes of the WebSocket `error` frame (contract section 7). */
export const WS_ERROR_CODES = [
  'bad_request',
  'forbidden',
  'rate_limited',
  'too_many_subscriptions',
  'internal',
  /** Extra to the contract: the token of an `auth` frame is invalid or expired (the old one stays). */
  'unauthorized',
] as const;
export type WsErrorCode = (typeof WS_ERROR_CODES)[number];

/** WebSocket close codes used by the gateway. */
export const CLOSE_CODES = {
  normal: 1000,
  /** The server is stopping (or the page going away): reconnect, elsewhere if need be. */
  goingAway: 1001,
  /** Policy violation, e.g. the token expired while connected: reconnect with a fresh token. */
  policyViolation: 1008,
  /** A frame exceeded the size limit. */
  messageTooBig: 1009,
  /** Unexpected server error: reconnect with backoff. */
  internalError: 1011,
  /** The node is draining or restarting: reconnect elsewhere, with jitter. */
  serviceRestart: 1012,
  /** Overloaded, e.g. the client could not keep up with its stream: resume from the cursor. */
  tryAgainLater: 1013,
  /**
   * Application range (4000–4999), set by the client on its own socket, never sent by a server:
   * no pong arrived in time, so the client dropped the connection and reconnects.
   */
  pingTimeout: 4000,
  /** Application range, set by the client: the device went offline, so it dropped the socket. */
  networkLost: 4001,
} as const;
