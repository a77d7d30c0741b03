import type { Principal } from '@openagents/sync-server-kit';
import type { CommitMember, MutationOutcome } from './commit';
import type { StreamTracer } from './stream-trace';

export interface AppendBatcherOptions {
  /** Most appends joined into one member (one subtransaction of a commit). */
  maxAppends: number;
  /**
   * Least time between the starts of two rounds, in ms, whether they follow each other back to
   * back or the batcher sat idle in between: this bounds a worker's stream transactions to
   * 1000 / minRoundIntervalMs per second (per token holder). An append that arrives with no round
   * in flight starts one at once when the last one started at least this long ago, else when the
   * interval is over.
   */
  minRoundIntervalMs: number;
  /** Bench only: marks the traced appends of each round as it starts (stream-trace.ts). */
  trace?: StreamTracer | undefined;
}

/**
 * maxAppends 512: one member is one subtransaction whatever it holds, so a member of 512 appends
 * costs Postgres one subtransaction id instead of 512 (a commit keeps at most 64 cached per
 * backend, which is why the pipeline caps a group at 32 members); the statement it becomes stays
 * a few hundred kilobytes.
 */
export const APPEND_BATCHER_DEFAULTS: AppendBatcherOptions = { maxAppends: 512, minRoundIntervalMs: 10 };

interface Waiting {
  member: CommitMember;
  /** The caller's: called once its appends are committed, before the answer. */
  committed: (() => void) | undefined;
  resolve(outcomes: MutationOutcome[]): void;
  reject(err: unknown): void;
}

/** The commit path under the batcher (the pipeline's `commit`): see `CommitPipeline.commit`. */
export type CommitWithSignal = (member: CommitMember, onCommitted?: () => void) => Promise<MutationOutcome[]>;

/**
 * Joins the append-stream commits of MANY replies into few commit members. A streamed reply
 * commits its pieces once per coalescing window (stream-upload.ts); with hundreds of replies
 * streaming, those commits arrive thousands of times a second, and as separate members the
 * pipeline could put at most 32 in one transaction. Here, the appends that arrive while a round
 * is committing wait and then go as one member per token holder (the actor recorded on each
 * event, and the scopes each append is checked against, stay the ones of its own request), so a
 * worker's transactions per second follow its commit latency, not its number of replies.
 *
 * A member of joined appends commits all or none. If it fails — one reply's piece no longer fits
 * its offset, say — each of its appends is committed again alone and gets exactly the answer it
 * would have had alone (an exact retry of a piece that did land writes nothing). A lone append
 * waits only for the round interval: with no round in flight, and none started within
 * `minRoundIntervalMs`, it goes in the same turn of the event loop. Writes other than
 * append-only members without idempotency keys pass straight through.
 *
 * The next round does not wait for the bus: it may start once every member of the round is
 * committed (the pipeline's `onCommitted`), while their publishes are still being acknowledged,
 * and each caller hears `onCommitted` then too, so a streamed reply's next piece can be in that
 * round. Publishes stay in commit order (one bus connection); answers still follow the
 * acknowledgement. A member that failed is retried alone before the next round starts.
 */
export function createAppendBatcher(
  commit: CommitWithSignal,
  options: AppendBatcherOptions = APPEND_BATCHER_DEFAULTS,
): CommitWithSignal {
  let waiting: Waiting[] = [];
  let roundInFlight = false;
  /** When the last round started (Date.now()): the next one starts minRoundIntervalMs later. */
  let lastStartedAt = Number.NEGATIVE_INFINITY;

  const settleAlone = (w: Waiting, committed?: () => void) =>
    commit(w.member, () => {
      committed?.();
      w.committed?.();
    }).then(w.resolve, w.reject);

  /** Resolves once the chunk is committed (or, failing that, settled): the round may go on. */
  const commitChunk = (entries: Waiting[]): Promise<void> =>
    new Promise<void>((roundMayGoOn) => {
      void commitJoined(entries, roundMayGoOn).finally(roundMayGoOn);
    });

  const commitJoined = async (entries: Waiting[], committed: () => void): Promise<void> => {
    if (entries.length === 1) {
      options.trace?.round(entries[0]!.member);
      return settleAlone(entries[0]!, committed);
    }
    const joined: CommitMember = {
      principal: entries[0]!.member.principal,
      mutations: entries.flatMap((w) => w.member.mutations),
    };
    options.trace?.round(joined);
    let outcomes: MutationOutcome[];
    try {
      outcomes = await commit(joined, () => {
        committed();
        for (const w of entries) w.committed?.();
      });
    } catch {
      // All or none failed: each append again on its own, answered as if it had been alone.
      await Promise.all(entries.map((w) => settleAlone(w)));
      return;
    }
    let at = 0;
    for (const w of entries) {
      w.resolve(outcomes.slice(at, at + w.member.mutations.length));
      at += w.member.mutations.length;
    }
  };

  const runRound = async (): Promise<void> => {
    while (waiting.length > 0) {
      // The next round waits out the interval since the last one started, collecting more
      // meanwhile: back to back, or after an idle gap shorter than the interval (a round of a
      // few ms whose next piece came just after it would otherwise start at once, and at
      // STREAM_COALESCE_MS 0 the rounds of short commits went past 1000 / interval per second).
      const wait = lastStartedAt + options.minRoundIntervalMs - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      lastStartedAt = Date.now();
      const now = waiting;
      waiting = [];
      const chunks: Waiting[][] = [];
      /** Per token holder: the chunk being filled and how many appends it holds. */
      const open = new Map<string, { entries: Waiting[]; appends: number }>();
      const records = new Set<string>();
      for (const w of now) {
        // Two commits of one record in one member would be checked against the same length.
        const mutations = w.member.mutations;
        const ids = mutations.length === 1 ? [recordKey(mutations[0]!)] : mutations.map(recordKey);
        if (ids.some((id) => records.has(id))) {
          waiting.push(w);
          continue;
        }
        for (const id of ids) records.add(id);
        const key = principalKey(w.member.principal);
        let chunk = open.get(key);
        if (!chunk || chunk.appends + w.member.mutations.length > options.maxAppends) {
          chunk = { entries: [], appends: 0 };
          open.set(key, chunk);
          chunks.push(chunk.entries);
        }
        chunk.entries.push(w);
        chunk.appends += w.member.mutations.length;
      }
      await Promise.all(chunks.map(commitChunk));
    }
    roundInFlight = false;
  };

  return (member, onCommitted) => {
    if (!joinable(member)) return commit(member, onCommitted);
    return new Promise<MutationOutcome[]>((resolve, reject) => {
      waiting.push({ member, committed: onCommitted, resolve, reject });
      if (roundInFlight) return;
      roundInFlight = true;
      // Not a timer: the round starts once this turn's timers and I/O are done, so the windows
      // of every reply that ended in the same turn commit together.
      setImmediate(() => void runRound());
    });
  };
}

/** Append-only members without idempotency keys: an append is made idempotent by its offset. */
function joinable(member: CommitMember): boolean {
  return (
    member.mutations.length > 0 &&
    member.mutations.every((m) => m.action === 'append' && m.mutationId === null)
  );
}

const recordKey = (m: CommitMember['mutations'][number]) => `${m.model}:${m.id}`;

/** Keys of the principals seen: a stream hands the same principal object to every commit. */
const principalKeys = new WeakMap<Principal, string>();

/** Members join only under the same token holder: same subject, same scopes, same kind of token. */
function principalKey(p: Principal): string {
  let key = principalKeys.get(p);
  if (key === undefined) {
    key = JSON.stringify([p.sub, p.use ?? 'client', p.scopes]);
    principalKeys.set(p, key);
  }
  return key;
}
