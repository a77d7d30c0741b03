import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SyncEvent } from '@openagents/sync-protocol';
import type { Principal } from '@openagents/sync-server-kit';
import { afterEach, describe, expect, it } from 'vitest';
import type { CommitMember } from './commit';
import { createStreamTracer, traceSampled } from './stream-trace';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stream-trace-'));
  dirs.push(dir);
  return join(dir, 'trace.ndjson');
}

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as [string, string, number, number, number]);

/** Ids the hash samples (or not) for `every`. */
function ids(every: number, sampled: boolean, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++)
    if (traceSampled(`id-${i}`, every) === sampled) out.push(`id-${i}`);
  return out;
}

const append = (id: string, offset: number, text: string) =>
  ({ action: 'append', model: 'Message', id, append: { field: 'content', offset, text } }) as never;

const event = (id: string, offset: number, text: string, action = 'append'): SyncEvent =>
  ({
    id: 1,
    scope: 'agent:1',
    model: 'Message',
    model_id: id,
    action,
    data: { field: 'content', offset, text },
  }) as never;

describe('stream tracer', () => {
  it('samples about one record in `every`, the same ones in every process', () => {
    const every = 8;
    let sampled = 0;
    for (let i = 0; i < 8000; i++)
      if (traceSampled(`00000000-0000-7000-8000-${String(i).padStart(12, '0')}`, every)) sampled++;
    expect(sampled).toBeGreaterThan(800);
    expect(sampled).toBeLessThan(1200);
    expect(traceSampled('abc', 1)).toBe(true);
  });

  it('marks only the sampled records, at every stage, with the range each covers', () => {
    const file = tempFile();
    const tracer = createStreamTracer(file, 4);
    const [traced] = ids(4, true, 1);
    const [other] = ids(4, false, 1);
    expect(tracer.sampled(traced!)).toBe(true);
    expect(tracer.sampled(other!)).toBe(false);
    tracer.mark('piece', traced!, 0, 9);
    const member: CommitMember = {
      principal: {} as Principal,
      mutations: [append(traced!, 0, 'x'.repeat(18)), append(other!, 0, 'y')],
    };
    tracer.round(member);
    tracer.events('committed', [
      event(traced!, 0, 'x'.repeat(18)),
      event(other!, 0, 'y'),
      event(traced!, 0, 'z', 'update'),
    ]);
    tracer.events('published', [event(traced!, 18, 'abc')]);
    tracer.close();
    const got = lines(file);
    expect(got.map(([stage, id, from, to]) => [stage, id, from, to])).toEqual([
      ['piece', traced, 0, 9],
      ['round', traced, 0, 18],
      ['committed', traced, 0, 18],
      ['published', traced, 18, 21],
    ]);
    // One clock for every process: the wall clock in ms, with sub-ms digits.
    for (const [, , , , at] of got) expect(Math.abs(at - Date.now())).toBeLessThan(5_000);
    expect(got.some(([, , , , at]) => !Number.isInteger(at))).toBe(true);
  });

  it('writes nothing for a round or commit with no traced record', () => {
    const file = tempFile();
    const tracer = createStreamTracer(file, 4);
    tracer.round({ principal: {} as Principal, mutations: [append('a', 0, 'x')] });
    tracer.events('committed', [event('a', 0, 'x')]);
    tracer.close();
    expect(() => readFileSync(file, 'utf8')).toThrow(/ENOENT/);
  });
});
