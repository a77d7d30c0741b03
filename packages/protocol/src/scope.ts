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

/**
 * Scope patterns granted by a token: an exact scope, a prefix ending in `*` (`agent:*`), or `*`.
 */
export function scopeAllowed(patterns: readonly string[], scope: string): boolean {
  for (const pattern of patterns) {
    if (pattern === '*' || pattern === scope) return true;
    if (pattern.endsWith('*') && scope.startsWith(pattern.slice(0, -1))) return true;
  }
  return false;
}
