import {
  APPEND_STREAM_CONTENT_TYPE,
  ErrorBody,
  HTTP_ERROR_STATUS,
  StreamAck,
  StreamDone,
} from '@openagents/sync-protocol';

/** How one streaming upload ended. */
export type UploadEnd =
  /** The server ended it cleanly: every piece sent before is durable (acks came first). */
  | { kind: 'done' }
  /** The server ended it with an error line, or refused it before streaming (`status`). */
  | { kind: 'error'; status: number; body: unknown; retryAfterMs: number }
  /** The endpoint is not there, or no answer came in time: use per-piece appends instead. */
  | { kind: 'unsupported'; message: string }
  /** The connection failed or the answer was cut or unreadable: reconnect and resend. */
  | { kind: 'cut'; message: string };

export interface UploadOptions {
  url: string;
  token: string | undefined;
  fetch: typeof fetch;
  /** No answer (status and headers) within this long means a proxy buffers the body. */
  openTimeoutMs: number;
  onAck(ack: StreamAck): void;
}

const encoder = new TextEncoder();

/**
 * One `POST …/append-stream` request: pieces go out as NDJSON lines on the request body while the
 * acknowledgements are read from the answer. `end` closes the body; `result` settles once the
 * server ended the answer (or the connection failed).
 */
export class UploadStream {
  readonly result: Promise<UploadEnd>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #abort = new AbortController();
  #closed = false;
  #timedOut = false;

  constructor(options: UploadOptions) {
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
    });
    this.result = this.#run(options, body);
  }

  /** Sends one piece (a line); ignored once the body is closed. */
  send(offset: number, field: string, text: string): void {
    if (this.#closed) return;
    try {
      this.#controller.enqueue(encoder.encode(`${JSON.stringify({ field, offset, text })}\n`));
    } catch {
      this.#closed = true;
    }
  }

  /** No more pieces: the server commits what it has, answers `done` and ends. */
  end(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#controller.close();
    } catch {}
  }

  /** Cuts the request (the server still commits the lines it received whole). */
  abort(): void {
    this.#cut();
    this.#abort.abort();
  }

  /** Ends the body with an error, so the server stops reading it (whatever carries it). */
  #cut(): void {
    this.#closed = true;
    try {
      this.#controller.error(new Error('append stream aborted'));
    } catch {}
  }

  async #run(o: UploadOptions, body: ReadableStream<Uint8Array>): Promise<UploadEnd> {
    const headers: Record<string, string> = { 'content-type': APPEND_STREAM_CONTENT_TYPE };
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    const timer = setTimeout(() => {
      this.#timedOut = true;
      this.#abort.abort();
    }, o.openTimeoutMs);
    let res: Response;
    try {
      res = await o.fetch(o.url, {
        method: 'POST',
        headers,
        body,
        signal: this.#abort.signal,
        duplex: 'half',
      } as RequestInit);
    } catch (error) {
      this.#cut();
      if (this.#timedOut) return { kind: 'unsupported', message: `no answer within ${o.openTimeoutMs} ms` };
      return { kind: 'cut', message: error instanceof Error ? error.message : String(error) };
    } finally {
      clearTimeout(timer);
    }
    if (res.status === 404 || res.status === 405 || res.status === 415 || res.status === 501) {
      // A server (or proxy) without the streaming upload: an unknown route, method or media type.
      // A 404 naming the model path is the record's own refusal, as `append` would answer it.
      const text = await res.text().catch(() => '');
      this.#stopBody();
      const own = res.status === 404 && /Unknown model path/.test(text);
      if (!own) return { kind: 'unsupported', message: `append-stream answered ${res.status}` };
      return { kind: 'error', status: 404, body: parse(text), retryAfterMs: 0 };
    }
    if (!res.ok || !res.body) {
      const text = await res.text().catch(() => '');
      this.#stopBody();
      return {
        kind: 'error',
        status: res.status,
        body: parse(text),
        retryAfterMs: Number(res.headers.get('retry-after') ?? 0) * 1000 || 0,
      };
    }
    try {
      return await this.#readAnswer(res.body, o);
    } finally {
      this.#stopBody();
    }
  }

  #stopBody(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#controller.close();
    } catch {}
  }

  async #readAnswer(answer: ReadableStream<Uint8Array>, o: UploadOptions): Promise<UploadEnd> {
    const reader = answer.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return { kind: 'cut', message: 'the answer ended without done' };
        buffered += decoder.decode(value, { stream: true });
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          const end = this.#line(line, o);
          if (end) {
            reader.cancel().catch(() => {});
            return end;
          }
        }
      }
    } catch (error) {
      return { kind: 'cut', message: error instanceof Error ? error.message : String(error) };
    }
  }

  /** One answer line: an ack (undefined: go on), or how the stream ended. */
  #line(line: string, o: UploadOptions): UploadEnd | undefined {
    if (line.trim() === '') return undefined;
    const value = parse(line);
    const ack = StreamAck.safeParse(value);
    if (ack.success) {
      o.onAck(ack.data);
      return undefined;
    }
    if (StreamDone.safeParse(value).success) return { kind: 'done' };
    const error = ErrorBody.safeParse(value);
    if (error.success) {
      const retry = (error.data.error.details as { retryAfterSeconds?: unknown } | undefined)
        ?.retryAfterSeconds;
      return {
        kind: 'error',
        status: HTTP_ERROR_STATUS[error.data.error.code as keyof typeof HTTP_ERROR_STATUS] ?? 500,
        body: error.data,
        retryAfterMs: typeof retry === 'number' ? retry * 1000 : 0,
      };
    }
    return { kind: 'cut', message: 'unreadable answer line' };
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
