import { describe, expect, it } from 'vitest';
import { parseDriverArgs } from './args';

describe('parseDriverArgs', () => {
  it('reads one origin and load options', () => {
    const args = parseDriverArgs(
      [
        'fanout',
        '--base-url',
        'http://localhost:8787/',
        '--secret',
        's',
        '--vus',
        '100',
        '--duration',
        '2.5',
        '--mode',
        'saturate',
      ],
      {},
    );
    expect(args.scenario).toBe('fanout');
    expect(args.target).toEqual({
      kind: 'sync',
      apiUrls: ['http://localhost:8787'],
      gatewayUrls: ['http://localhost:8787'],
      deltaUrl: 'http://localhost:8787',
      secret: 's',
    });
    expect(args.vus).toBe(100);
    expect(args.durationMs).toBe(2500);
    expect(args.mode).toBe('saturate');
  });

  it('takes explicit services and a token from the environment', () => {
    const args = parseDriverArgs(
      [
        'mutations',
        '--api-url',
        'http://a:1,http://b:2',
        '--gateway-url',
        'http://g:3',
        '--delta-url',
        'http://d:4',
      ],
      { TOKEN: 'jwt' },
    );
    expect(args.target).toEqual({
      kind: 'sync',
      apiUrls: ['http://a:1', 'http://b:2'],
      gatewayUrls: ['http://g:3'],
      deltaUrl: 'http://d:4',
      token: 'jwt',
    });
  });

  it('reads the soak options: ramp in seconds, churn in percent per minute', () => {
    const args = parseDriverArgs(
      [
        'soak',
        '--base-url',
        'http://x',
        '--secret',
        's',
        '--vus',
        '2000',
        '--scopes',
        '100',
        '--rate',
        '50',
        '--duration',
        '3600',
        '--ramp',
        '600',
        '--churn',
        '3',
      ],
      {},
    );
    expect(args).toMatchObject({
      scenario: 'soak',
      vus: 2000,
      scopes: 100,
      rate: 50,
      durationMs: 3_600_000,
      rampMs: 600_000,
      churnPerMinute: 0.03,
    });
    const still = parseDriverArgs(['soak', '--base-url', 'http://x', '--secret', 's', '--churn', '0'], {});
    expect(still.churnPerMinute).toBe(0);
    expect(still.rampMs).toBeUndefined();
  });

  it('reads the stream options and refuses an unknown way of writing', () => {
    const base = ['stream', '--base-url', 'http://x', '--secret', 's'];
    const args = parseDriverArgs(
      [
        ...base,
        '--replies',
        '500',
        '--tokens-per-second',
        '30',
        '--tokens',
        '300',
        '--viewers',
        '3',
        '--tokens-per-append',
        '4',
        '--write',
        'patch',
      ],
      {},
    );
    expect(args).toMatchObject({
      scenario: 'stream',
      replies: 500,
      tokensPerSecond: 30,
      tokens: 300,
      viewers: 3,
      tokensPerAppend: 4,
      write: 'patch',
    });
    expect(() => parseDriverArgs([...base, '--write', 'put'], {})).toThrow(/--write must be append or patch/);
    expect(parseDriverArgs([...base, '--upload', 'client'], {}).upload).toBe('client');
    expect(parseDriverArgs(base, {}).upload).toBeUndefined();
    expect(() => parseDriverArgs([...base, '--upload', 'fetch'], {})).toThrow(
      /--upload must be driver or client/,
    );
    expect(() => parseDriverArgs([...base, '--viewers', '0'], {})).toThrow(
      /--viewers must be a positive number/,
    );
  });

  it('refuses a soak whose ramp is not shorter than the run, or a negative churn', () => {
    const base = ['soak', '--base-url', 'http://x', '--secret', 's'];
    expect(() => parseDriverArgs([...base, '--duration', '60', '--ramp', '60'], {})).toThrow(/--ramp/);
    expect(() => parseDriverArgs([...base, '--churn=-1'], {})).toThrow(/--churn must be a number ≥ 0/);
    expect(() => parseDriverArgs([...base, '--peer', 'ws-redis', '--peer-url', 'http://x'], {})).toThrow(
      /fanout/,
    );
  });

  it('accepts a peer for fanout only', () => {
    const args = parseDriverArgs(['fanout', '--peer', 'ws-redis', '--peer-url', 'http://127.0.0.1:9000'], {});
    expect(args.target).toEqual({ kind: 'peer', peer: 'ws-redis', urls: ['http://127.0.0.1:9000'] });
    expect(() => parseDriverArgs(['mutations', '--peer', 'ws-redis', '--peer-url', 'http://x'], {})).toThrow(
      /fanout/,
    );
    expect(() => parseDriverArgs(['fanout', '--peer', 'nope', '--peer-url', 'http://x'], {})).toThrow(
      /--peer/,
    );
  });

  it('rejects bad input with a message for the user', () => {
    expect(() => parseDriverArgs([], {})).toThrow(/unknown scenario/);
    expect(() => parseDriverArgs(['soak-forever'], {})).toThrow(/unknown scenario/);
    expect(() => parseDriverArgs(['fanout'], {})).toThrow(/--base-url/);
    expect(() => parseDriverArgs(['fanout', '--base-url', 'http://x'], {})).toThrow(/--secret/);
    expect(() =>
      parseDriverArgs(['fanout', '--base-url', 'http://x', '--secret', 's', '--vus=-3'], {}),
    ).toThrow(/--vus must be a positive number/);
    expect(() =>
      parseDriverArgs(['fanout', '--base-url', 'http://x', '--secret', 's', '--mode', 'fast'], {}),
    ).toThrow(/--mode/);
    expect(() => parseDriverArgs(['fanout', '--bogus'], {})).toThrow();
  });
});

describe('parseDriverArgs --viewer-client', () => {
  const base = ['stream', '--base-url', 'http://localhost:8787', '--secret', 's'];

  it('takes lean or ws, and leaves it unset (the scenario default, lean) when absent', () => {
    expect(parseDriverArgs([...base, '--viewer-client', 'ws'], {}).viewerClient).toBe('ws');
    expect(parseDriverArgs([...base, '--viewer-client', 'lean'], {}).viewerClient).toBe('lean');
    expect(parseDriverArgs(base, {}).viewerClient).toBeUndefined();
  });

  it('refuses anything else with a clear message', () => {
    expect(() => parseDriverArgs([...base, '--viewer-client', 'uws'], {})).toThrow(
      /--viewer-client must be lean or ws/,
    );
  });
});
