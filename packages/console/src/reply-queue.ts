import { runSimulatedReply, type SimulatedReplyOptions, type SimulatedReplyResult } from './simulated-agent';

/**
 * Runs simulated replies one at a time per agent, so two quick messages get two replies in order
 * instead of two interleaved streams. Failures are reported, never thrown into the UI.
 */
export class ReplyQueue {
  #tails = new Map<string, Promise<unknown>>();
  #onError: (error: unknown) => void;
  #run: (options: SimulatedReplyOptions) => Promise<SimulatedReplyResult>;

  constructor(
    onError: (error: unknown) => void,
    run: (options: SimulatedReplyOptions) => Promise<SimulatedReplyResult> = runSimulatedReply,
  ) {
    this.#onError = onError;
    this.#run = run;
  }

  /** Queues a reply for `options.agentId`, after `before` (e.g. the user's message is committed). */
  enqueue(options: SimulatedReplyOptions, before: Promise<unknown> = Promise.resolve()): Promise<void> {
    const previous = this.#tails.get(options.agentId) ?? Promise.resolve();
    const next = Promise.all([previous, before])
      .then(() => this.#run(options))
      .then(
        () => undefined,
        (error: unknown) => this.#onError(error),
      );
    this.#tails.set(options.agentId, next);
    next.then(() => {
      if (this.#tails.get(options.agentId) === next) this.#tails.delete(options.agentId);
    });
    return next;
  }
}
