import { expect } from 'vitest';

/**
 * NDJSON over a streaming request and its streaming answer, for the tests of the streaming
 * upload (`…/append-stream`): a request body written line by line while the request is open, and
 * the answer read line by line as it arrives.
 */

const encoder = new TextEncoder();

/** A request body the test writes line by line, while the response streams back. */
export function lineBody(first?: unknown) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
      if (first !== undefined) c.enqueue(encoder.encode(`${JSON.stringify(first)}\n`));
    },
  });
  return {
    body,
    push(line: unknown) {
      controller.enqueue(encoder.encode(typeof line === 'string' ? line : `${JSON.stringify(line)}\n`));
    },
    bytes(b: Uint8Array) {
      controller.enqueue(b);
    },
    end() {
      // The server may have cancelled the body already (it ended the stream with an error).
      try {
        controller.close();
      } catch {}
    },
  };
}

/** Reads an NDJSON response line by line. */
export function lineReader(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  return {
    async next(): Promise<Record<string, unknown> | undefined> {
      for (;;) {
        const nl = buffered.indexOf('\n');
        if (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          return JSON.parse(line) as Record<string, unknown>;
        }
        const { done, value } = await reader.read();
        if (done) {
          expect(buffered).toBe('');
          return undefined;
        }
        buffered += decoder.decode(value, { stream: true });
      }
    },
    async rest(): Promise<Record<string, unknown>[]> {
      const lines: Record<string, unknown>[] = [];
      for (let line = await this.next(); line; line = await this.next()) lines.push(line);
      return lines;
    },
  };
}
