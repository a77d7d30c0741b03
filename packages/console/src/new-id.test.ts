import { Agent } from '@openagents/sync-protocol';
import { describe, expect, it } from 'vitest';
import { newId, uuidFromBytes } from './new-id';
import { isUuid } from './route';

describe('newId', () => {
  it('builds uuids the API accepts from raw bytes (the insecure-context path)', () => {
    for (const fill of [0x00, 0xff, 0x5a]) {
      const id = uuidFromBytes(new Uint8Array(16).fill(fill));
      expect(isUuid(id)).toBe(true);
      expect(Agent.shape.id.safeParse(id).success).toBe(true);
    }
    const random = new Set(
      Array.from({ length: 100 }, () => uuidFromBytes(crypto.getRandomValues(new Uint8Array(16)))),
    );
    expect(random.size).toBe(100);
  });

  it('uses crypto.randomUUID where it exists', () => {
    expect(isUuid(newId())).toBe(true);
  });
});
