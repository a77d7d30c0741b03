import { runSimulatedReply, type SimulatedReplyOptions, type SimulatedReplyResult } from './simulated-agent';

/**
 * Runs simulated replies one at a time per agent, so two quick messages get two replies in order
 * instead of two interleaved streams. Failures are reported, never thrown into the UI.
 */
export class ReplyQueue {
  /** Replies queued, finished and failed so far (shown on `window.__SYNC_DEBUG__.replies`). */
  readonly stats = { queued: 0, finished: 0, failed: 0 };
  /** Where failures go; the app points it at its error banner once mounted. */
  onError: (error: unknown) => void;
  #tails = new Map<string, Promise<unknown>>();
  #run: (options: SimulatedReplyOptions) => Promise<SimulatedReplyResult>;

  constructor(
    onError: (error: unknown) => void,
    run: (options: SimulatedReplyOptions) => Promise<SimulatedReplyResult> = runSimulatedReply,
  ) {
    this.onError = onError;
    this.#run = run;
  }

  /** Queues a reply for `options.agentId`, after `before` (e.g. the user's message is committed). */
  enqueue(options: SimulatedReplyOptions, before: Promise<unknown> = Promise.resolve()): Promise<void> {
    const previous = this.#tails.get(options.agentId) ?? Promise.resolve();
    this.stats.queued++;
    const next = Promise.all([previous, before])
      .then(() => this.#run(options))
      .then(
        () => {
          this.stats.finished++;
        },
        (error: unknown) => {
          this.stats.failed++;
          this.onError(error);
        },
      );
    this.#tails.set(options.agentId, next);
    next.then(() => {
      if (this.#tails.get(options.agentId) === next) this.#tails.delete(options.agentId);
    });
    return next;
  }
}
