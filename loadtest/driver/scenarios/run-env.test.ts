import { describe, expect, it } from 'vitest';
import type { PoolSnapshot } from '../client-pool';
import { Histogram } from '../histogram';
import { createPeerTarget } from '../peer-target';
import { connectionSpecs, guaranteeChecks, subscribersPerScope } from './run-env';

describe('connectionSpecs', () => {
  it('gives every scope the same number of subscribers, spread over every node', async () => {
    const target = createPeerTarget('uws-local', ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
    const scopes = ['agent:a', 'agent:b', 'agent:c', 'agent:d'];
    const specs = await connectionSpecs(target, scopes, 16);
    expect([...subscribersPerScope(specs).values()]).toEqual([4, 4, 4, 4]);
    for (const scope of scopes) {
      const nodes = new Set(specs.filter((s) => s.scopes.includes(scope)).map((s) => new URL(s.url).port));
      expect(nodes).toEqual(new Set(['1', '2']));
    }
  });

  it('subscribes several scopes per connection when asked', async () => {
    const target = createPeerTarget('ws-redis', ['http://127.0.0.1:1']);
    const specs = await connectionSpecs(target, ['agent:a', 'agent:b', 'agent:c'], 3, 2);
    expect(specs.map((s) => s.scopes)).toEqual([
      ['agent:a', 'agent:b'],
      ['agent:b', 'agent:c'],
      ['agent:c', 'agent:a'],
    ]);
    expect(specs[0]!.url).toBe('ws://127.0.0.1:1/sync');
  });
});

describe('guaranteeChecks', () => {
  const settled = (over: Partial<PoolSnapshot>): PoolSnapshot => ({
    connections: 2,
    open: 2,
    ready: 2,
    delivered: 10,
    duplicates: 0,
    lost: 0,
    frames: 10,
    errors: {},
    unexpectedCloses: 0,
    reconnects: 0,
    latency: new Histogram(),
    caughtUp: 2,
    caughtUpAt: 0,
    behind: 0,
    bootstrapRecords: 0,
    bootstrapFrames: 2,
    snapshotCovered: 0,
    resumePairs: [],
    ...over,
  });
  const failed = (checks: ReturnType<typeof guaranteeChecks>) =>
    checks.filter((c) => !c.ok).map((c) => c.name);

  it('passes a complete, contiguous stream and fails loss, duplicates and missing deliveries', () => {
    expect(failed(guaranteeChecks(settled({}), 10))).toEqual([]);
    expect(failed(guaranteeChecks(settled({ lost: 1 }), 10))).toEqual(['no lost events (ids contiguous)']);
    expect(failed(guaranteeChecks(settled({ duplicates: 2 }), 10))).toEqual(['no duplicate events']);
    expect(failed(guaranteeChecks(settled({ delivered: 9 }), 10))).toEqual([
      'every published event reached every subscriber',
    ]);
    expect(failed(guaranteeChecks(settled({ behind: 1 }), 10))).toEqual([
      'every published event reached every subscriber',
    ]);
  });

  it('counts events a resume at cursor 0 received inside its bootstrap, as the contract answers it', () => {
    const checks = guaranteeChecks(settled({ delivered: 7, snapshotCovered: 3 }), 10);
    expect(failed(checks)).toEqual([]);
    expect(checks[2]!.detail).toBe("10/10 delivered (3 through a resume's snapshot)");
  });
});
