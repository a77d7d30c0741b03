import { describe, expect, it } from 'vitest';
import { createPeerTarget } from '../peer-target';
import { connectionSpecs, subscribersPerScope } from './run-env';

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
