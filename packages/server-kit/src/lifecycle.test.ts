import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { composeServices, handleSignals, type Service, type SignalSource } from './lifecycle';

/** A process stand-in: signals are emitted by the test, exits are recorded. */
function fakeProcess() {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  const source: SignalSource = {
    once: (signal, listener) => emitter.once(signal, listener),
    exit: (code) => {
      exits.push(code);
    },
  };
  return { source, exits, send: (signal: 'SIGTERM' | 'SIGINT') => emitter.emit(signal) };
}

/** A part that records every call in `log` under its name; `fail` names calls that reject. */
function part(name: string, log: string[], fail: string[] = []): Service {
  const step = (what: string) => async () => {
    log.push(`${name}.${what}`);
    if (fail.includes(what)) throw new Error(`${name}.${what} failed`);
  };
  return { start: step('start'), drain: step('drain'), stop: step('stop') };
}

/** Resolves once every pending promise callback has run (no timers involved). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

const quiet = { info: () => {}, error: () => {} };

describe('handleSignals', () => {
  it('drains, then stops, then exits 0 on SIGTERM', async () => {
    const calls: string[] = [];
    const proc = fakeProcess();
    handleSignals(part('svc', calls), quiet, proc.source);
    proc.send('SIGTERM');
    await settle();
    expect(calls).toEqual(['svc.drain', 'svc.stop']);
    expect(proc.exits).toEqual([0]);
  });

  it('does the same on SIGINT, and a second signal exits 1 at once', async () => {
    const calls: string[] = [];
    const proc = fakeProcess();
    let release = () => {};
    const slow: Service = {
      ...part('svc', calls),
      drain: () =>
        new Promise<void>((resolve) => {
          calls.push('svc.drain');
          release = resolve;
        }),
    };
    handleSignals(slow, quiet, proc.source);
    proc.send('SIGINT');
    proc.send('SIGTERM');
    expect(proc.exits).toEqual([1]);
    release();
    await settle();
    expect(calls).toEqual(['svc.drain', 'svc.stop']);
  });

  it('still exits when draining fails, and says why', async () => {
    const calls: string[] = [];
    const errors: string[] = [];
    const proc = fakeProcess();
    const log = { info: () => {}, error: (_: object, msg: string) => errors.push(msg) };
    handleSignals(part('svc', calls, ['drain']), log, proc.source);
    proc.send('SIGTERM');
    await settle();
    expect(proc.exits).toEqual([0]);
    expect(errors).toEqual(['error while shutting down']);
  });
});

describe('composeServices', () => {
  it('starts parts in order, drains every one, stops them in reverse order', async () => {
    const calls: string[] = [];
    const whole = composeServices([part('db', calls), part('api', calls), part('gateway', calls)]);
    await whole.start();
    expect(calls).toEqual(['db.start', 'api.start', 'gateway.start']);
    calls.length = 0;
    await whole.drain();
    expect(calls.sort()).toEqual(['api.drain', 'db.drain', 'gateway.drain']);
    calls.length = 0;
    await whole.stop();
    expect(calls).toEqual(['gateway.stop', 'api.stop', 'db.stop']);
  });

  it('drains the parts at once, not one after another', async () => {
    const calls: string[] = [];
    const waiting: (() => void)[] = [];
    const held = (name: string): Service => ({
      ...part(name, calls),
      drain: () =>
        new Promise<void>((resolve) => {
          calls.push(`${name}.drain`);
          waiting.push(resolve);
        }),
    });
    const whole = composeServices([held('api'), held('delta')]);
    await whole.start();
    const drained = whole.drain();
    await settle();
    // Both began before either finished.
    expect(calls.filter((c) => c.endsWith('drain'))).toEqual(['api.drain', 'delta.drain']);
    for (const resolve of waiting) resolve();
    await drained;
  });

  it('drains every part even when one fails, then reports the failure', async () => {
    const calls: string[] = [];
    const whole = composeServices([part('api', calls, ['drain']), part('gateway', calls)]);
    await whole.start();
    await expect(whole.drain()).rejects.toThrow('api.drain failed');
    expect(calls).toContain('gateway.drain');
  });

  it('stops every started part even when one fails, and the part whose start failed', async () => {
    const calls: string[] = [];
    const whole = composeServices([
      part('db', calls),
      part('api', calls, ['start', 'stop']),
      part('gateway', calls),
    ]);
    await expect(whole.start()).rejects.toThrow('api.start failed');
    calls.length = 0;
    await expect(whole.stop()).rejects.toThrow('api.stop failed');
    expect(calls).toEqual(['api.stop', 'db.stop']);
    calls.length = 0;
    await whole.stop();
    expect(calls).toEqual([]);
  });
});
