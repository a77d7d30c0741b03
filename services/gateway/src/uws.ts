import uWS, { type ListenOptions, type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';
import type { WsCompression } from './config';

export type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_listen_socket,
  us_socket_context_t,
  WebSocket,
  WebSocketBehavior,
} from 'uWebSockets.js';

/** Exports only the native addon has; the pure-JS fallback of the package lacks every one of them. */
const NATIVE_ONLY_EXPORTS = ['SSLApp', 'getParts', 'SHARED_COMPRESSOR'] as const;

/** Which implementation a loaded `uWebSockets.js` module is. */
export function detectUwsImplementation(mod: object): 'native' | 'fallback' {
  const keys = new Set(Object.keys(mod));
  return NATIVE_ONLY_EXPORTS.every((name) => keys.has(name)) ? 'native' : 'fallback';
}

/**
 * Throws unless `mod` is the native uWebSockets.js addon. The package silently falls back to a
 * slow pure-JS server when its binary does not load (wrong Node ABI, missing platform build) or
 * when `UWS_USE_FALLBACK` is set; a gateway on that fallback would accept connections and then
 * collapse under load, so it refuses to start instead.
 */
export function assertNativeUws(mod: object = uWS): void {
  if (detectUwsImplementation(mod) === 'native') return;
  throw new Error(
    'uWebSockets.js native binary is not loaded (the package fell back to its pure-JS implementation). ' +
      `Run on a supported platform/Node ABI (${process.platform}-${process.arch}, modules ${process.versions.modules}) ` +
      'and unset UWS_USE_FALLBACK.',
  );
}

export { uWS };

/**
 * `app.listen` without SO_REUSEPORT (uSockets' LIBUS_LISTEN_EXCLUSIVE_PORT, which uWS.js accepts
 * between port and callback, with or without a host; its typings only know the form without).
 */
export function listenExclusive(
  app: TemplatedApp,
  host: string | undefined,
  port: number,
  onListen: (socket: us_listen_socket | false) => void,
): void {
  const exclusive = 1 as ListenOptions;
  if (host === undefined) {
    app.listen(port, exclusive, onListen);
    return;
  }
  (app.listen as unknown as (h: string, p: number, o: ListenOptions, cb: typeof onListen) => void).call(
    app,
    host,
    port,
    exclusive,
    onListen,
  );
}

/**
 * What `WebSocket.send` returns: the message is buffered
 * (`backpressure`), written (`success`), or refused because the send buffer is past
 * `maxBackpressure` (`dropped`: the stream has a hole, so the socket must be closed).
 */
export const SEND_STATUS = { backpressure: 0, success: 1, dropped: 2 } as const;

/**
 * uWS `compression` of the `/sync` behaviour for a WS_COMPRESSION value. Client frames use the
 * shared decompressor (no inflate state per connection: uWS asks the client for
 * `client_no_context_takeover`), and uWS inflates at most `maxPayloadLength` bytes of one message.
 */
export function compressOptions(mode: WsCompression): number {
  switch (mode) {
    case 'off':
      return uWS.DISABLED;
    case 'shared':
      return uWS.SHARED_COMPRESSOR | uWS.SHARED_DECOMPRESSOR;
    case 'dedicated-3kb':
      return uWS.DEDICATED_COMPRESSOR_3KB | uWS.SHARED_DECOMPRESSOR;
  }
}
