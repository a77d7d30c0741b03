import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { freePort } from '../../../test/support/ports';
import { loadEnv, logLevel, port } from './config';
import type { Service } from './lifecycle';
import { type ProcessIo, runService } from './run-service';

/** A process stand-in: environment, stderr and exits recorded, signals sent by the test. */
function fakeIo(env: Record<string, string>) {
  const signals = new EventEmitter();
  const exits: number[] = [];
  let stderr = '';
  const io: ProcessIo = {
    env,
    stderr: { write: (text: string) => (stderr += text) },
    once: (signal, listener) => signals.once(signal, listener),
    exit: (code) => {
      exits.push(code);
    },
  };
  return { io, exits, stderr: () => stderr, send: (s: 'SIGTERM') => signals.emit(s) };
}

const Table = z.object({ PORT: port.default(0), LOG_LEVEL: logLevel.default('silent') });
const loadConfig = (env: Record<string, string | undefined>) => loadEnv(Table, env);

function recordingService(calls: string[]): Service & { fetch: (r: Request) => Promise<Response> } {
  return {
    fetch: async () => new Response('served'),
    start: async () => void calls.push('start'),
    drain: async () => void calls.push('drain'),
    stop: async () => void calls.push('stop'),
  };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('runService', () => {
  it('refuses to start on a bad variable, naming it, with exit code 1 and no stack', async () => {
    const proc = fakeIo({ PORT: 'eighty' });
    let created = false;
    await expect(
      runService({
        name: 'test',
        loadConfig,
        create: () => {
          created = true;
          return recordingService([]);
        },
        io: proc.io,
      }),
    ).rejects.toThrow();
    expect(proc.exits).toEqual([1]);
    expect(proc.stderr()).toMatch(
      /^sync-test: refusing to start: Invalid configuration:\n {2}PORT: .*"eighty"/,
    );
    expect(proc.stderr()).not.toMatch(/\n\s+at /);
    expect(created).toBe(false);
  });

  it('refuses to start when the factory throws (e.g. no native uWS), with its message', async () => {
    const proc = fakeIo({});
    await expect(
      runService({
        name: 'gw',
        loadConfig,
        create: () => {
          throw new Error('uWebSockets.js native binary is not loaded');
        },
        io: proc.io,
      }),
    ).rejects.toThrow();
    expect(proc.stderr()).toBe('sync-gw: refusing to start: uWebSockets.js native binary is not loaded\n');
    expect(proc.exits).toEqual([1]);
  });

  it('prints a setup error of start as one sentence, stops what started, exits 1', async () => {
    class SetupError extends Error {}
    const proc = fakeIo({});
    const calls: string[] = [];
    await expect(
      runService({
        name: 'sa',
        loadConfig,
        create: () => ({
          ...recordingService(calls),
          start: async () => {
            throw new SetupError('Postgres cannot enter /x: run chmod o+x /x.');
          },
        }),
        isSetupError: (err) => err instanceof SetupError,
        io: proc.io,
      }),
    ).rejects.toThrow();
    expect(proc.stderr()).toBe('sync-sa: refusing to start: Postgres cannot enter /x: run chmod o+x /x.\n');
    expect(calls).toEqual(['stop']);
    expect(proc.exits).toEqual([1]);
  });

  it('serves the fetch on its port, then on SIGTERM drains the service and the listener, stops, exits 0', async () => {
    const proc = fakeIo({});
    const calls: string[] = [];
    const chosen = await freePort();
    await runService({
      name: 'http',
      loadConfig,
      create: () => recordingService(calls),
      http: (service) => ({ port: chosen, fetch: service.fetch }),
      io: proc.io,
    });
    expect(calls).toEqual(['start']);
    expect(await (await fetch(`http://127.0.0.1:${chosen}/`)).text()).toBe('served');
    proc.send('SIGTERM');
    while (proc.exits.length === 0) await settle();
    expect(calls).toEqual(['start', 'drain', 'stop']);
    expect(proc.exits).toEqual([0]);
    // The listener is closed: the port refuses connections.
    await expect(fetch(`http://127.0.0.1:${chosen}/`)).rejects.toThrow();
  });
});
