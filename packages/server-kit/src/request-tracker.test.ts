import { describe, expect, it } from 'vitest';
import { createRequestTracker } from './request-tracker';

describe('request tracker', () => {
  it("passes the server's bindings through (the api reads a streaming upload from the Node request)", async () => {
    const tracker = createRequestTracker();
    const bindings = { incoming: { marker: 1 } };
    let seen: unknown;
    const fetch = tracker.wrap((_request, env) => {
      seen = env;
      return new Response('ok');
    });
    await fetch(new Request('http://x/'), bindings);
    expect(seen).toBe(bindings);
  });

  it('counts requests while they run and drains once they finish', async () => {
    const tracker = createRequestTracker();
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const fetch = tracker.wrap(async () => {
      await held;
      return new Response('ok');
    });
    const response = fetch(new Request('http://x/'));
    expect(tracker.inFlight).toBe(1);
    let drained = false;
    const drain = tracker.drain(60_000).then(() => {
      drained = true;
    });
    expect(tracker.draining).toBe(true);
    await Promise.resolve();
    expect(drained).toBe(false);
    release();
    expect(await (await response).text()).toBe('ok');
    await drain;
    expect(tracker.inFlight).toBe(0);
  });

  it('gives up waiting after the timeout, and counts a failed request as finished', async () => {
    const tracker = createRequestTracker();
    const stuck = tracker.wrap(() => new Promise<Response>(() => {}));
    void stuck(new Request('http://x/'));
    await tracker.drain(10);
    expect(tracker.inFlight).toBe(1);
    const failing = createRequestTracker();
    await expect(
      failing.wrap(() => {
        throw new Error('boom');
      })(new Request('http://x/')),
    ).rejects.toThrow('boom');
    expect(failing.inFlight).toBe(0);
  });
});
