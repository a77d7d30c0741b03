import http from 'node:http';
import { APPEND_STREAM_CONTENT_TYPE, APPEND_STREAM_SEGMENT } from '@openagents/sync-protocol';

/** What an upload reports back; called synchronously from the socket's data. */
export interface NdjsonUploadHooks {
  /** Everything before `length` (UTF-16 units) is durable (an ack line, docs/api.md). */
  acked(length: number): void;
  /** The upload failed for good: an error line, a refusal, a cut, or an early `done`. */
  failed(message: string): void;
}

export interface NdjsonUploadOptions {
  /** Origin of the API, e.g. `http://127.0.0.1:8787`. */
  baseUrl: string;
  token: string;
  /** The record's path segment and id: `messages`, `<uuid>`. */
  path: string;
  id: string;
  field: string;
  agent: http.Agent;
  hooks: NdjsonUploadHooks;
}

/**
 * The load driver's own streaming upload (`POST …/append-stream`, docs/api.md "Streaming
 * upload"): one plain `http` request per reply whose body is the NDJSON lines, each a template
 * string with the offset and the piece spliced in, written straight to the socket; the answer's
 * ack lines are split and parsed as they come. It costs the driver a string and a socket write
 * per piece, where the client package's writer (kept as `--upload client`) goes through fetch, a
 * WHATWG ReadableStream, a TextEncoder and a zod parse per ack — and that cost was the driver's,
 * so it capped what one machine could measure.
 *
 * It does not retry: a load run wants to see a cut or a refusal, and reports it as a failure
 * (the client's writer, which does retry, is what the console and agents use). Every piece is
 * still offset-checked by the server, and an ack is trusted only if it moves forward.
 */
export class NdjsonUpload {
  readonly #hooks: NdjsonUploadHooks;
  readonly #request: http.ClientRequest;
  readonly #prefix: string;
  readonly finished: Promise<void>;
  #offset = 0;
  #acked = 0;
  #ended = false;
  #settled = false;
  #buffered = '';
  #resolve!: () => void;

  constructor(o: NdjsonUploadOptions) {
    this.#hooks = o.hooks;
    this.#prefix = `{"field":${JSON.stringify(o.field)},"offset":`;
    this.finished = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    const url = new URL(`/api/${o.path}/${encodeURIComponent(o.id)}/${APPEND_STREAM_SEGMENT}`, o.baseUrl);
    this.#request = http.request(url, {
      method: 'POST',
      agent: o.agent,
      headers: {
        'content-type': APPEND_STREAM_CONTENT_TYPE,
        authorization: `Bearer ${o.token}`,
        'transfer-encoding': 'chunked',
      },
    });
    this.#request.setNoDelay(true);
    // Headers go out now: the server answers 200 before any piece, so a slow open shows as the
    // first tokens' latency (the reply's opening), not as a stall of the first write.
    this.#request.flushHeaders();
    this.#request.on('error', (err) => this.#fail(`upload: ${err.message}`));
    this.#request.on('response', (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => this.#fail(`append-stream answered ${res.statusCode}: ${body.slice(0, 200)}`));
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => this.#onAnswer(chunk));
      res.on('end', () => this.#fail('the answer ended without done'));
      res.on('error', (err) => this.#fail(`answer: ${err.message}`));
    });
  }

  /** The field's length once everything sent so far is durable. */
  get offset(): number {
    return this.#offset;
  }

  /** Sends one piece at the current offset (ignored once ended or failed). */
  send(text: string): void {
    if (this.#ended || this.#settled || text === '') return;
    this.#request.write(`${this.#prefix}${this.#offset},"text":${JSON.stringify(text)}}\n`);
    this.#offset += text.length;
  }

  /** No more pieces: `finished` settles once the server answered `done` (or the upload failed). */
  end(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      this.#request.end();
    }
    return this.finished;
  }

  /** Stops at once (a run that gives up); `finished` settles. */
  abort(): void {
    this.#fail('aborted');
  }

  #onAnswer(chunk: string): void {
    this.#buffered += chunk;
    for (let nl = this.#buffered.indexOf('\n'); nl >= 0; nl = this.#buffered.indexOf('\n')) {
      const line = this.#buffered.slice(0, nl);
      this.#buffered = this.#buffered.slice(nl + 1);
      if (line !== '') this.#onLine(line);
      if (this.#settled) return;
    }
  }

  #onLine(line: string): void {
    let value: { length?: unknown; done?: unknown; error?: { code?: unknown; message?: unknown } };
    try {
      value = JSON.parse(line);
    } catch {
      this.#fail(`unreadable answer line: ${line.slice(0, 200)}`);
      return;
    }
    if (value.done === true) {
      // A clean end: every piece sent before is durable. Before end() it is the server ending
      // the stream early (idle, too long, draining), which a load run of short replies reports.
      if (typeof value.length === 'number') this.#ack(value.length);
      if (!this.#ended) this.#fail('the server ended the stream early');
      else if (this.#acked !== this.#offset) this.#fail(`done at ${this.#acked}, sent ${this.#offset}`);
      else this.#settle();
      return;
    }
    if (value.error) {
      this.#fail(`${String(value.error.code)}: ${String(value.error.message)}`);
      return;
    }
    if (typeof value.length !== 'number') {
      this.#fail(`unreadable answer line: ${line.slice(0, 200)}`);
      return;
    }
    this.#ack(value.length);
  }

  #ack(length: number): void {
    if (length > this.#offset) {
      this.#fail(`acknowledged ${length}, only ${this.#offset} sent`);
      return;
    }
    if (length <= this.#acked) return;
    this.#acked = length;
    this.#hooks.acked(length);
  }

  #fail(message: string): void {
    if (this.#settled) return;
    this.#hooks.failed(message);
    this.#request.destroy();
    this.#settle();
  }

  #settle(): void {
    this.#settled = true;
    this.#resolve();
  }
}
