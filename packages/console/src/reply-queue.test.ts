import { describe, expect, it } from 'vitest';
import { ReplyQueue } from './reply-queue';
import type { SimulatedReplyOptions, SimulatedReplyResult } from './simulated-agent';

const options = (agentId: string, prompt: string) => ({ baseUrl: 'http://x', token: 't', agentId, prompt });

describe('ReplyQueue', () => {
  it('runs one reply at a time per agent, after the message it answers', async () => {
    const log: string[] = [];
    let release!: () => void;
    const committed = new Promise<void>((r) => {
      release = r;
    });
    const run = async (o: SimulatedReplyOptions) => {
      log.push(`start ${o.agentId} ${o.prompt}`);
      await Promise.resolve(); // a reply ends after it starts, never in the same step
      log.push(`end ${o.agentId} ${o.prompt}`);
      return {} as SimulatedReplyResult;
    };
    const queue = new ReplyQueue(() => {}, run);
    const first = queue.enqueue(options('a', '1'), committed);
    const second = queue.enqueue(options('a', '2'));
    const other = queue.enqueue(options('b', '1'));
    await other;
    expect(log).toEqual(['start b 1', 'end b 1']);
    release();
    await Promise.all([first, second]);
    expect(log.slice(2)).toEqual(['start a 1', 'end a 1', 'start a 2', 'end a 2']);
    expect(queue.stats).toEqual({ queued: 3, finished: 3, failed: 0 });
  });

  it('reports a failure and keeps going; a refused message gets no reply', async () => {
    const errors: unknown[] = [];
    const prompts: string[] = [];
    const queue = new ReplyQueue(
      (e) => errors.push(e),
      async (o) => {
        prompts.push(o.prompt);
        if (o.prompt === 'boom') throw new Error('boom');
        return {} as SimulatedReplyResult;
      },
    );
    await queue.enqueue(options('a', 'never'), Promise.reject(new Error('message refused')));
    await queue.enqueue(options('a', 'boom'));
    await queue.enqueue(options('a', 'ok'));
    expect(prompts).toEqual(['boom', 'ok']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['message refused', 'boom']);
    expect(queue.stats).toEqual({ queued: 3, finished: 1, failed: 2 });
  });
});
