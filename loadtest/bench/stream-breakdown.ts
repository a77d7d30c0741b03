import { APPEND_STREAM_DEFAULTS } from '../../services/api/src/stream-upload';
import { Histogram, type LatencySummary } from '../driver/histogram';
import { TOKEN_LENGTH } from '../driver/stream-text';
import type { ViewerTransport } from '../driver/worker-messages';

/** One stack configuration of the run: the worker's coalescing and the gateways' compression. */
export interface StackConfig {
  label: string;
  /** Tokens the driver's writer batches into one append (client-side batching of appends). */
  tokensPerAppend: number;
  apiEnv: Record<string, string>;
  gatewayEnv: Record<string, string>;
  /**
   * The viewers' WebSocket client: the driver's lean one, unless the gateways compress
   * (`ws=<mode>` other than off), where the `ws` package negotiates permessage-deflate as browsers do.
   */
  viewerTransport: ViewerTransport;
}

/**
 * The writer's batching when a configuration does not say: two tokens per append, what the client
 * package's stream writer sends at 30 tokens/s over its 40 ms window, and what one ~400-byte
 * event per append needs to stay within token bytes + 200 on the wire.
 */
export const DEFAULT_TOKENS_PER_APPEND = 2;

/**
 * STREAM_CONFIGS, e.g. "coalesce=0,ws=dedicated-8kb;coalesce=40". The worker's coalescing is
 * always passed explicitly (the stack's processes inherit this process's environment).
 */
export function parseStackConfigs(raw: string | undefined): StackConfig[] {
  const list = (raw ?? '').split(';').map((c) => c.trim());
  return (list.some(Boolean) ? list.filter(Boolean) : ['']).map((text): StackConfig => {
    let coalesce = APPEND_STREAM_DEFAULTS.coalesceMs;
    let pieces = APPEND_STREAM_DEFAULTS.coalescePieces;
    let ws: string | undefined;
    let tokensPerAppend = DEFAULT_TOKENS_PER_APPEND;
    for (const pair of text.split(',').filter(Boolean)) {
      const [key, value = ''] = pair.split('=').map((x) => x.trim());
      const n = Number(value);
      if (key === 'coalesce' && value !== '' && Number.isInteger(n) && n >= 0 && n <= 1000) coalesce = n;
      else if (key === 'pieces' && value !== '' && Number.isInteger(n) && n >= 0) pieces = n;
      else if (key === 'ws' && /^[\w-]+$/.test(value)) ws = value;
      else if (key === 'append' && value !== '' && Number.isInteger(n) && n >= 1 && n <= 1000)
        tokensPerAppend = n;
      else
        throw new Error(
          `STREAM_CONFIGS: bad "${pair}" (coalesce=<0..1000>, pieces=<n>, ws=<mode>, append=<tokens per append, 1..1000>)`,
        );
    }
    const label = [
      `${tokensPerAppend} token${tokensPerAppend === 1 ? '' : 's'} per append`,
      `coalesce ${coalesce} ms`,
      ...(pieces > 0 ? [`${pieces} pieces`] : []),
      `ws ${ws ?? 'gateway default'}`,
    ].join(', ');
    return {
      label,
      tokensPerAppend,
      apiEnv: { STREAM_COALESCE_MS: String(coalesce), STREAM_COALESCE_PIECES: String(pieces) },
      gatewayEnv: ws === undefined ? {} : { WS_COMPRESSION: ws },
      viewerTransport: ws === undefined || ws === 'off' ? 'lean' : 'ws',
    };
  });
}

/**
 * The stages of a streamed token, in path order, as the worker's trace (stream-trace.ts) and the
 * bus tap (bus-tap.ts) name them: read off the upload, handed to commit (its coalescing window
 * over), its batcher round started, committed, its publish issued, on Redis.
 */
export const TRACE_STAGES = [
  ['piece', 'worker read'],
  ['flush', 'handed to commit'],
  ['round', 'round start'],
  ['committed', 'committed'],
  ['published', 'publish issued'],
  ['bus', 'on Redis'],
] as const;
export type TraceStage = (typeof TRACE_STAGES)[number][0];

/** `[stage, record id, from, to, ms]` lines of the trace files, by record id. */
export type TraceLines = Map<string, [TraceStage, number, number, number][]>;

/** Parses trace NDJSON (several files' text); lines that are not a stage mark are skipped. */
export function parseTrace(texts: readonly string[], into: TraceLines = new Map()): TraceLines {
  const stages = new Set<string>(TRACE_STAGES.map((s) => s[0]));
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let mark: unknown;
      try {
        mark = JSON.parse(line);
      } catch {
        continue;
      }
      if (!Array.isArray(mark) || mark.length !== 5 || !stages.has(mark[0])) continue;
      const [stage, id, from, to, at] = mark as [TraceStage, string, number, number, number];
      const list = into.get(id) ?? [];
      list.push([stage, from, to, at]);
      into.set(id, list);
    }
  }
  return into;
}

export interface StageFigures {
  stage: string;
  /** From the token's generation to this stage. */
  since: LatencySummary;
  /** From the previous stage to this one (the first: from generation). */
  own: LatencySummary;
}

/**
 * Joins each token of the traced replies with its stages: token k (at offset 9k) is at a stage
 * when the first mark of that stage whose range covers its offset was made. Only tokens past
 * `openingTokens` generated within `[from, to]` (the steady window) count. Returns, per stage,
 * the time since generation and the stage's own time, p50…p99 over the tokens seen at both ends.
 */
export function breakdown(
  replies: readonly { messageId: string; generatedAt: Float64Array }[],
  lines: TraceLines,
  window: { from: number; to: number; openingTokens: number },
): { traced: number; tokens: number; stages: StageFigures[] } {
  const since = TRACE_STAGES.map(() => new Histogram());
  const own = TRACE_STAGES.map(() => new Histogram());
  let traced = 0;
  let tokens = 0;
  for (const r of replies) {
    const marks = lines.get(r.messageId);
    if (!marks) continue;
    traced++;
    const count = r.generatedAt.length;
    // at[stage][k]: when token k reached the stage (NaN: not seen).
    const at = TRACE_STAGES.map(() => new Float64Array(count).fill(Number.NaN));
    for (const [stage, from, to, ms] of marks) {
      const row = at[TRACE_STAGES.findIndex((s) => s[0] === stage)]!;
      for (let k = Math.ceil(from / TOKEN_LENGTH); k < count && k * TOKEN_LENGTH < to; k++) {
        if (Number.isNaN(row[k]!) || ms < row[k]!) row[k] = ms;
      }
    }
    for (let k = window.openingTokens; k < count; k++) {
      const generated = r.generatedAt[k]!;
      if (!(generated >= window.from && generated <= window.to)) continue;
      tokens++;
      let previous = generated;
      for (let i = 0; i < TRACE_STAGES.length; i++) {
        const t = at[i]![k]!;
        if (Number.isNaN(t)) {
          previous = Number.NaN;
          continue;
        }
        since[i]!.record(t - generated);
        if (!Number.isNaN(previous)) own[i]!.record(t - previous);
        previous = t;
      }
    }
  }
  return {
    traced,
    tokens,
    stages: TRACE_STAGES.map(([, name], i) => ({
      stage: name,
      since: since[i]!.summary(),
      own: own[i]!.summary(),
    })),
  };
}
