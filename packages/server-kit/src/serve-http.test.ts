import { describe, expect, it } from 'vitest';
import { freePort } from '../../../test/support/ports';
import { createLogger } from './logger';
import { httpListener } from './serve-http';

const log = createLogger({ name: 'listener-test', level: 'silent' });

describe('httpListener', () => {
  it('serves the fetch on its port; drain lets an in-flight request finish, then the port is closed', async () => {
    const port = await freePort();
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const listener = httpListener({
      name: 't',
      port,
      log,
      closeTimeoutMs: 60_000,
      fetch: async (request) => {
        if (new URL(request.url).pathname === '/slow') {
          entered();
          await held;
        }
        return new Response('ok');
      },
    });
    await listener.start();
    expect(listener.port()).toBe(port);
    const slow = fetch(`http://127.0.0.1:${port}/slow`);
    await inHandler;
    const drained = listener.drain();
    release();
    expect(await (await slow).text()).toBe('ok');
    await drained;
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    await listener.stop();
  });

  it('closes the port on stop when it was never drained', async () => {
    const port = await freePort();
    const listener = httpListener({ name: 't', port, log, fetch: () => new Response('ok') });
    await listener.start();
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(200);
    await listener.stop();
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});
