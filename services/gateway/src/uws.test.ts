import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { assertNativeUws, detectUwsImplementation, uWS } from './uws';

describe('uWebSockets.js detection', () => {
  it('recognises the native addon loaded in this process', () => {
    expect(detectUwsImplementation(uWS)).toBe('native');
    expect(() => assertNativeUws(uWS)).not.toThrow();
  });

  it('recognises the pure-JS fallback by its exports', () => {
    const fallback = {
      _cfg() {},
      us_listen_socket_close() {},
      us_socket_local_port() {},
      App() {},
      default: {},
    };
    expect(detectUwsImplementation(fallback)).toBe('fallback');
    expect(() => assertNativeUws(fallback)).toThrow(/native binary is not loaded/);
  });
});

/** Bytes a `ws` client reads for `count` similar ~400-byte frames sent with compression `options`. */
async function compressedBytes(
  options: number,
  count: number,
): Promise<{ bytes: number; extensions: string }> {
  const app = uWS.App();
  let server: uWS.WebSocket<unknown> | undefined;
  const opened = new Promise<void>((resolve) => {
    app.ws('/', {
      compression: options,
      open: (ws) => {
        server = ws;
        resolve();
      },
    });
  });
  const listen = await new Promise<uWS.us_listen_socket>((resolve) =>
    app.listen(0, (s) => resolve(s as never)),
  );
  const client = new WebSocket(`ws://127.0.0.1:${uWS.us_socket_local_port(listen)}/`);
  const upgraded = new Promise<IncomingMessage>((resolve) => client.once('upgrade', resolve));
  let received = 0;
  const all = new Promise<void>((resolve) => client.on('message', () => ++received === count && resolve()));
  const res = await upgraded;
  await opened;
  const socket = res.socket as Socket;
  const before = socket.bytesRead;
  for (let i = 0; i < count; i++) {
    const frame = JSON.stringify({
      type: 'sync',
      scope: 'agent:7146b541-3d4b-49f2-b0e5-ee705ab9b08d',
      events: [
        {
          id: i,
          data: {
            text: ' the agent',
            field: 'content',
            offset: i * 10,
            updated_at: `2026-12-01T17:07:${i}Z`,
          },
          model: 'Message',
          scope: 'agent:7146b541-3d4b-49f2-b0e5-ee705ab9b08d',
          action: 'append',
          model_id: '731984eb-efb5-4c5a-b677-6862352438d7',
          created_at: `2026-12-01T17:07:${i}Z`,
          mutationId: null,
        },
      ],
      latestSyncId: i,
    });
    server!.send(frame, false, true);
  }
  await all;
  const bytes = socket.bytesRead - before;
  client.close();
  uWS.us_listen_socket_close(listen);
  return { bytes, extensions: String(res.headers['sec-websocket-extensions']) };
}

describe('permessage-deflate of this uWebSockets.js build', () => {
  // WS_COMPRESSION offers only dedicated-3kb because of this. When a uWS upgrade makes this test
  // fail (a larger window compresses consecutive frames far better), widen WS_COMPRESSION_MODES.
  it('negotiates a larger window but compresses every dedicated size as DEDICATED_COMPRESSOR_3KB', async () => {
    const small = await compressedBytes(uWS.DEDICATED_COMPRESSOR_3KB | uWS.SHARED_DECOMPRESSOR, 50);
    const large = await compressedBytes(uWS.DEDICATED_COMPRESSOR_16KB | uWS.SHARED_DECOMPRESSOR, 50);
    expect(small.extensions).toMatch(/server_max_window_bits=9/);
    expect(large.extensions).toMatch(/server_max_window_bits=11/);
    expect(large.bytes).toBe(small.bytes);
    const off = await compressedBytes(uWS.DISABLED, 50);
    expect(small.bytes).toBeLessThan(off.bytes * 0.7);
  });
});
