import { AppError } from '@openagents/sync-server-kit';

/** True for `application/json`, with or without parameters such as `; charset=utf-8`. */
export function isJsonContentType(header: string | null | undefined): boolean {
  if (!header) return false;
  const type = header.split(';')[0]!.trim().toLowerCase();
  return type === 'application/json';
}

/**
 * Reads a JSON request body of at most `limit` bytes. The declared Content-Length is checked
 * first (413 before reading anything); the stream is counted too, since a chunked body declares
 * no length, and reading stops as soon as the limit is crossed.
 *
 * Throws AppError: 415 when the content type is not JSON, 413 when too large, 400 when the bytes
 * are not valid UTF-8 JSON.
 */
export async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  if (!isJsonContentType(request.headers.get('content-type'))) {
    throw new AppError('unsupported_media_type', 'The body must be application/json');
  }
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  // With a declared length the HTTP parser delivers exactly that many bytes, so the body can be
  // read in one go (the cheap path in @hono/node-server: no web stream is built); without one
  // (chunked), count the stream as it arrives.
  const bytes =
    declared !== null && /^\d+$/.test(declared)
      ? new Uint8Array(await request.arrayBuffer())
      : await readLimited(request, limit);
  if (bytes.byteLength > limit) throw tooLarge(limit);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new AppError('bad_request', 'The body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new AppError('bad_request', 'The body is not valid JSON', {
      details: [
        { path: '(body)', message: err instanceof Error ? err.message.slice(0, 200) : 'invalid JSON' },
      ],
    });
  }
}

async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function tooLarge(limit: number): AppError {
  return new AppError('payload_too_large', `The body exceeds ${limit} bytes`, { details: { limit } });
}
