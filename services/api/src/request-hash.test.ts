import { describe, expect, it } from 'vitest';
import { canonicalJson, requestHash } from './request-hash';

describe('canonicalJson', () => {
  it('sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: null }, u: undefined })).toBe(
      '{"a":{"c":null,"d":[2,{"y":2,"z":1}]},"b":1}',
    );
  });
  it('keeps __proto__ as a plain key', () => {
    expect(canonicalJson(JSON.parse('{"__proto__":{"x":1}}'))).toBe('{"__proto__":{"x":1}}');
  });
});

describe('requestHash', () => {
  it('ignores key order but not method, path or values', () => {
    const a = requestHash('POST', '/api/agents', { name: 'x', org_id: '1' });
    expect(requestHash('post', '/api/agents', { org_id: '1', name: 'x' })).toBe(a);
    expect(requestHash('PATCH', '/api/agents', { name: 'x', org_id: '1' })).not.toBe(a);
    expect(requestHash('POST', '/api/messages', { name: 'x', org_id: '1' })).not.toBe(a);
    expect(requestHash('POST', '/api/agents', { name: 'y', org_id: '1' })).not.toBe(a);
    expect(requestHash('DELETE', '/api/agents/1', undefined)).toMatch(/^[0-9a-f]{64}$/);
  });
});
