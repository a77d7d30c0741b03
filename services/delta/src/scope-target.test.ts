import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scopeTarget } from './scope-target';

describe('scopeTarget', () => {
  it("maps the registry's scope prefixes (org, agent) with canonical uuids to their rows", () => {
    const id = randomUUID();
    expect(scopeTarget(`org:${id}`)).toEqual({ kind: 'records', prefix: 'org', id });
    expect(scopeTarget(`agent:${id}`)).toEqual({ kind: 'records', prefix: 'agent', id });
  });

  it('selects nothing for other kinds, non-uuids and non-canonical spellings', () => {
    const id = randomUUID();
    for (const scope of [
      `team:${id}`,
      'org:1',
      `org:${id.toUpperCase()}`,
      `org:{${id}}`,
      `org:${id.replaceAll('-', '')}`,
      `org:${id}:extra`,
      'org',
      '',
    ]) {
      expect(scopeTarget(scope), scope).toEqual({ kind: 'none' });
    }
  });
});
