import * as z from 'zod/mini';

/**
 * The streaming upload of appends (`POST /api/<path>/<id>/append-stream`, beside the contract's
 * `append`; docs/api.md "Streaming upload"): the request body is NDJSON, one append body
 * `{ "field", "offset", "text" }` per line; the response is NDJSON too, one line per commit.
 */
export const APPEND_STREAM_CONTENT_TYPE = 'application/x-ndjson';

/** The path segment after the record id: `/api/messages/<id>/append-stream`. */
export const APPEND_STREAM_SEGMENT = 'append-stream';

/**
 * A commit of the stream's pieces: every piece before `length` (UTF-16 code units) is durable.
 * `offset` is where the first of them started; `syncId` is the log id of the event that carries
 * them (absent when they were all exact retries of text already there and wrote nothing new).
 */
export const StreamAck = z.object({
  offset: z.int(),
  length: z.int(),
  syncId: z.optional(z.int()),
});
export type StreamAck = z.infer<typeof StreamAck>;

/**
 * The last line of a stream the server ended cleanly: the request body ended, the stream was
 * idle or open too long, or the worker drains. Every piece sent before it is durable (`length`
 * is the stream's end, absent when it carried no piece). A writer with more to say opens a new
 * stream at `length`.
 */
export const StreamDone = z.object({
  done: z.literal(true),
  length: z.optional(z.int()),
});
export type StreamDone = z.infer<typeof StreamDone>;
