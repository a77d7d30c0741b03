import { appendFileSync } from 'node:fs';
import type { SyncEvent } from '@openagents/sync-protocol';
import type { CommitMember } from './commit';

/**
 * Where a streamed piece is on the worker's path, for `npm run bench:stream`'s latency breakdown:
 * `piece` read off the upload, `flush` handed to the commit path (its coalescing window over),
 * `round` its append batcher round started, `committed` the transaction committed, `published`
 * its events handed to the bus. Each line names the record and the range of the field it covers.
 */
export type StreamStage = 'piece' | 'flush' | 'round' | 'committed' | 'published';

/**
 * A bench-only trace of streamed pieces (`STREAM_TRACE_FILE`): for one record in `every` (by a
 * hash of its id, the same one `traceSampled` gives a reader of the trace), one NDJSON line per
 * stage — `[stage, id, from, to, ms]`, `ms` the wall clock with microseconds
 * (`performance.timeOrigin + performance.now()`, comparable across processes of one machine).
 * Lines are buffered and appended to the file every 100 ms. Off (no tracer at all) unless the
 * variable is set: the hot path then pays one `undefined` check per stage.
 */
export interface StreamTracer {
  /** Whether this record is traced (call once per stream; the rest take its word). */
  sampled(id: string): boolean;
  /** A stage of `[from, to)` of record `id`'s streamed field. */
  mark(stage: StreamStage, id: string, from: number, to: number): void;
  /** `round`: the traced appends of a batcher round's member. */
  round(member: CommitMember): void;
  /** `committed` / `published`: the traced append events of a commit. */
  events(stage: 'committed' | 'published', events: readonly SyncEvent[]): void;
  /** Writes what is buffered and stops the timer. */
  close(): void;
}

/** The wall clock in ms with sub-ms precision: one clock for every process of the machine. */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

/** FNV-1a of the id, mod `every`, is 0: the same records are traced by every process. */
export function traceSampled(id: string, every: number): boolean {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % every === 0;
}

export function createStreamTracer(file: string, every: number): StreamTracer {
  const traced = new Set<string>();
  let lines: string[] = [];
  const write = () => {
    if (lines.length === 0) return;
    const text = lines.join('');
    lines = [];
    appendFileSync(file, text);
  };
  const timer = setInterval(write, 100);
  timer.unref();
  const mark = (stage: StreamStage, id: string, from: number, to: number, at = preciseNow()) => {
    lines.push(`${JSON.stringify([stage, id, from, to, Number(at.toFixed(3))])}\n`);
  };
  return {
    sampled(id) {
      if (!traceSampled(id, every)) return false;
      traced.add(id);
      return true;
    },
    mark,
    round(member) {
      if (traced.size === 0) return;
      const at = preciseNow();
      for (const m of member.mutations) {
        if (m.action === 'append' && traced.has(m.id))
          mark('round', m.id, m.append.offset, m.append.offset + m.append.text.length, at);
      }
    },
    events(stage, events) {
      if (traced.size === 0) return;
      const at = preciseNow();
      for (const e of events) {
        if (e.action !== 'append' || !traced.has(e.model_id)) continue;
        const data = e.data as { offset?: unknown; text?: unknown } | null;
        if (typeof data?.offset === 'number' && typeof data.text === 'string')
          mark(stage, e.model_id, data.offset, data.offset + data.text.length, at);
      }
    },
    close() {
      clearInterval(timer);
      write();
    },
  };
}
