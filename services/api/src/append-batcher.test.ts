import type { Principal } from '@openagents/sync-server-kit';
import { describe, expect, it, vi } from 'vitest';
import { createAppendBatcher } from './append-batcher';
import type { CommitMember, MutationOutcome } from './commit';
import type { PlannedMutation } from './mutation-plan';

const agent: Principal = { sub: 'agent', scopes: ['*'], exp: 0 };
const other: Principal = { sub: 'other', scopes: ['*'], exp: 0 };

function appendTo(id: string, offset = 0, text = 'x'): PlannedMutation {
  return {
    action: 'append',
    model: 'Message',
    id,
    append: { field: 'content', offset, text },
    mutationId: null,
    requestHash: '',
    at: { index: 0 },
    scope: null,
  } as unknown as PlannedMutation;
}

/** A commit path that records the members it was given and answers each mutation with its id. */
function recordingCommit(fails: (member: CommitMember) => boolean = () => false) {
  const members: CommitMember[] = [];
  let release: () => void = () => {};
  let gate: Promise<void> = Promise.resolve();
  const commit = async (member: CommitMember): Promise<MutationOutcome[]> => {
    members.push(member);
    await gate;
    if (fails(member)) throw new Error(`refused ${member.mutations.map((m) => m.id).join(',')}`);
    return member.mutations.map((m) => ({
      status: 200,
      body: { data: { id: m.id }, scope: 's', syncId: 1 },
      replayed: false,
    }));
  };
  return {
    commit,
    members,
    /** Holds every commit until released (a transaction in flight). */
    hold() {
      gate = new Promise((resolve) => {
        release = resolve;
      });
    },
    release: () => release(),
  };
}

const ids = (outcomes: MutationOutcome[]) => outcomes.map((o) => o.body.data.id);
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('append batcher', () => {
  it('joins the appends of many replies that arrive in one turn into one member', async () => {
    const c = recordingCommit();
    const commit = createAppendBatcher(c.commit);
    const answers = await Promise.all(
      ['a', 'b', 'c'].map((id) => commit({ principal: agent, mutations: [appendTo(id)] })),
    );
    expect(answers.map(ids)).toEqual([['a'], ['b'], ['c']]);
    expect(c.members.map((m) => m.mutations.map((x) => x.id))).toEqual([['a', 'b', 'c']]);
  });

  it('collects what arrives while a round commits into the next round', async () => {
    const c = recordingCommit();
    const commit = createAppendBatcher(c.commit);
    c.hold();
    const first = commit({ principal: agent, mutations: [appendTo('a')] });
    await turn();
    expect(c.members).toHaveLength(1); // a lone append goes at once
    const later = ['b', 'c', 'd'].map((id) => commit({ principal: agent, mutations: [appendTo(id)] }));
    await turn();
    expect(c.members).toHaveLength(1); // waiting for the round in flight
    c.release();
    await first;
    expect((await Promise.all(later)).map(ids)).toEqual([['b'], ['c'], ['d']]);
    expect(c.members.map((m) => m.mutations.map((x) => x.id))).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('joins only under the same token holder, and never one record twice in a member', async () => {
    const c = recordingCommit();
    const commit = createAppendBatcher(c.commit);
    await Promise.all([
      commit({ principal: agent, mutations: [appendTo('a', 0)] }),
      commit({ principal: other, mutations: [appendTo('b')] }),
      commit({ principal: agent, mutations: [appendTo('a', 1)] }),
      commit({ principal: agent, mutations: [appendTo('c')] }),
    ]);
    const members = c.members.map((m) => [m.principal.sub, m.mutations.map((x) => x.id).join('')]);
    expect(members).toEqual([
      ['agent', 'ac'],
      ['other', 'b'],
      ['agent', 'a'],
    ]);
    expect(c.members[2]!.mutations[0]).toMatchObject({ append: { offset: 1 } });
  });

  it('caps a member at maxAppends', async () => {
    const c = recordingCommit();
    const commit = createAppendBatcher(c.commit, { maxAppends: 2, minRoundIntervalMs: 0 });
    await Promise.all(
      ['a', 'b', 'c', 'd', 'e'].map((id) => commit({ principal: agent, mutations: [appendTo(id)] })),
    );
    expect(c.members.map((m) => m.mutations.length)).toEqual([2, 2, 1]);
  });

  it('starts back-to-back rounds at least minRoundIntervalMs apart', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const c = recordingCommit();
      const commit = createAppendBatcher(c.commit, { maxAppends: 512, minRoundIntervalMs: 10 });
      c.hold();
      const first = commit({ principal: agent, mutations: [appendTo('a')] });
      await turn();
      const second = commit({ principal: agent, mutations: [appendTo('b')] });
      c.release();
      await first;
      await turn();
      expect(c.members).toHaveLength(1); // the next round waits out the interval
      await vi.advanceTimersByTimeAsync(9);
      expect(c.members).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(c.members).toHaveLength(2);
      expect(ids(await second)).toEqual(['b']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps rounds minRoundIntervalMs apart across an idle gap too (the commit-rate bound holds)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const c = recordingCommit();
      const commit = createAppendBatcher(c.commit, { maxAppends: 512, minRoundIntervalMs: 10 });
      // A short round: it commits and the batcher is idle again, 0 ms after it started.
      expect(ids(await commit({ principal: agent, mutations: [appendTo('a')] }))).toEqual(['a']);
      await turn();
      await vi.advanceTimersByTimeAsync(3);
      const next = commit({ principal: agent, mutations: [appendTo('b')] });
      await turn();
      expect(c.members).toHaveLength(1); // 3 ms after the last round started: not yet
      await vi.advanceTimersByTimeAsync(6);
      expect(c.members).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(c.members).toHaveLength(2);
      expect(ids(await next)).toEqual(['b']);
      // Past the interval, a lone append goes at once.
      await vi.advanceTimersByTimeAsync(50);
      const lone = commit({ principal: agent, mutations: [appendTo('c')] });
      await turn();
      expect(c.members).toHaveLength(3);
      expect(ids(await lone)).toEqual(['c']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('starts the next round once the last one is committed, not once the bus acknowledged it', async () => {
    const members: CommitMember[] = [];
    const answers: (() => void)[] = [];
    // Committed at once; the answer (the publish acknowledgement) waits until the test lets it.
    const commit = createAppendBatcher(
      (member, onCommitted) => {
        members.push(member);
        onCommitted?.();
        return new Promise<MutationOutcome[]>((resolve) => {
          answers.push(() =>
            resolve(
              member.mutations.map(() => ({
                status: 200,
                body: { data: {}, scope: 's', syncId: 1 },
                replayed: false,
              })),
            ),
          );
        });
      },
      { maxAppends: 512, minRoundIntervalMs: 0 },
    );
    const heard: string[] = [];
    const first = commit({ principal: agent, mutations: [appendTo('a', 0)] }, () =>
      heard.push('a committed'),
    );
    await turn();
    expect(heard).toEqual(['a committed']);
    // The reply's next piece, sent on that signal, commits in the next round while `a` is unanswered.
    const second = commit({ principal: agent, mutations: [appendTo('a', 1)] }, () =>
      heard.push('a+1 committed'),
    );
    await turn();
    await turn();
    expect(members).toHaveLength(2);
    expect(heard).toEqual(['a committed', 'a+1 committed']);
    for (const answer of answers) answer();
    await Promise.all([first, second]);
  });

  it('commits each append alone when the joined member fails, each with its own answer', async () => {
    // 'b' cannot commit (its offset moved): the joined member fails as a whole.
    const c = recordingCommit((m) => m.mutations.some((x) => x.id === 'b'));
    const commit = createAppendBatcher(c.commit);
    const settled = await Promise.allSettled(
      ['a', 'b', 'c'].map((id) => commit({ principal: agent, mutations: [appendTo(id)] })),
    );
    expect(settled.map((s) => (s.status === 'fulfilled' ? ids(s.value) : String(s.reason)))).toEqual([
      ['a'],
      'Error: refused b',
      ['c'],
    ]);
    expect(c.members.map((m) => m.mutations.map((x) => x.id).join(''))).toEqual(['abc', 'a', 'b', 'c']);
  });

  it('passes other writes straight through', async () => {
    const c = recordingCommit();
    const commit = createAppendBatcher(c.commit);
    const keyed = { ...appendTo('k'), mutationId: 'key-1' } as PlannedMutation;
    const insert = { ...appendTo('i'), action: 'insert', values: {} } as unknown as PlannedMutation;
    await Promise.all([
      commit({ principal: agent, mutations: [keyed] }),
      commit({ principal: agent, mutations: [insert] }),
      commit({ principal: agent, mutations: [appendTo('a')] }),
    ]);
    expect(c.members.map((m) => m.mutations.map((x) => x.id).join(''))).toEqual(['k', 'i', 'a']);
  });
});
