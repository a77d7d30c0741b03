import { createHash } from 'node:crypto';

/**
 * JSON with object keys sorted at every level, so two bodies that differ only in key order hash
 * the same. Only called on bodies that already passed validation (flat records), so the recursion
 * depth is bounded by the schemas, not by the input.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.keys(value)
    .sort()
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

/**
 * The fingerprint stored with an idempotency key: sha256 of method, path and canonical body.
 * A retry must match it exactly to be answered with the stored result.
 *
 * @example
 *   requestHash('POST', '/api/agents', { name: 'a', org_id }) // hex digest
 */
export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method.toUpperCase()} ${path}\n${body === undefined ? '' : canonicalJson(body)}`)
    .digest('hex');
}
