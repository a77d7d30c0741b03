import * as z from 'zod/mini';

/**
 * A scope names one ordered log: `org:<uuid>`, `agent:<uuid>`, or any `<kind>:<id>` made of
 * [A-Za-z0-9_.:-]. Kept short and printable so it is safe as a Redis channel and a log field.
 */
export const SCOPE_PATTERN = /^[a-z][a-z0-9_-]{0,31}:[A-Za-z0-9_.:-]{1,128}$/;
export const Scope = z
  .string()
  .check(z.regex(SCOPE_PATTERN, 'scope must look like "org:<id>" or "agent:<id>"'));
export type Scope = z.infer<typeof Scope>;

/** Kinds whose id is a uuid: their id is compared case-insensitively, stored lowercase. */
const UUID_KINDS = ['org:', 'agent:'] as const;

function uuidKindOf(s: string): string | undefined {
  for (const kind of UUID_KINDS) if (s.startsWith(kind)) return kind;
  return undefined;
}

/**
 * The one spelling of a scope that logs, channels and token checks use: the id of an `org:` or
 * `agent:` scope lowercased (uuids are written lowercase everywhere, so `org:5E79…` and
 * `org:5e79…` are the same log), every other scope unchanged. Returns undefined for anything
 * that is not a valid `Scope` (refuse it: there is no canonical form to compare).
 *
 * @example
 *   canonicalScope('org:5E79A1C0-…')  // 'org:5e79a1c0-…'
 *   canonicalScope('ORG:x')           // undefined
 */
export function canonicalScope(s: unknown): string | undefined {
  if (typeof s !== 'string' || !SCOPE_PATTERN.test(s)) return undefined;
  const kind = uuidKindOf(s);
  return kind ? kind + s.slice(kind.length).toLowerCase() : s;
}

/**
 * A token's scope pattern in the form `scopeAllowed` compares: `*` as is, an exact scope or a
 * prefix (`org:5E*`) with the id part of `org:`/`agent:` lowercased, like `canonicalScope`.
 */
export function canonicalScopePattern(pattern: string): string {
  const kind = uuidKindOf(pattern);
  return kind ? kind + pattern.slice(kind.length).toLowerCase() : pattern;
}

/**
 * Scope patterns granted by a token: an exact scope, a prefix ending in `*` (`agent:*`), or `*`.
 * Both sides are compared in canonical form, so no spelling of a uuid grants or escapes more
 * than its lowercase form; a scope that is not a valid `Scope` is never allowed.
 */
export function scopeAllowed(patterns: readonly string[], scope: string): boolean {
  const canonical = canonicalScope(scope);
  if (canonical === undefined) return false;
  for (const raw of patterns) {
    if (raw === '*') return true;
    const pattern = canonicalScopePattern(raw);
    if (pattern === canonical) return true;
    if (pattern.endsWith('*') && canonical.startsWith(pattern.slice(0, -1))) return true;
  }
  return false;
}
