import { describe, expect, it } from 'vitest';
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
