import { describe, expect, it } from 'vitest';
import { parseDriverArgs } from './args';

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
