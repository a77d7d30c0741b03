/**
 * The console's location, kept in the URL hash so a link opens the same org and agent:
 * `#/org/<orgId>` or `#/org/<orgId>/agent/<agentId>`.
 */
export interface ConsoleRoute {
  orgId: string;
  agentId: string | null;
}

/** The org shown when the URL names none. */
export const DEMO_ORG_ID = '00000000-0000-4000-8000-00000000d3e0';

const ID = '[0-9a-fA-F-]{36}';
const ROUTE = new RegExp(`^#?/org/(${ID})(?:/agent/(${ID}))?/?$`);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** Reads the route from a hash (falls back to `?org=` in the query, then the demo org). */
export function parseRoute(hash: string, search = ''): ConsoleRoute {
  const match = ROUTE.exec(hash);
  if (match && isUuid(match[1]!)) {
    const agentId = match[2] && isUuid(match[2]) ? match[2].toLowerCase() : null;
    return { orgId: match[1]!.toLowerCase(), agentId };
  }
  const org = new URLSearchParams(search).get('org');
  return { orgId: org && isUuid(org) ? org.toLowerCase() : DEMO_ORG_ID, agentId: null };
}

export function formatRoute(route: ConsoleRoute): string {
  return route.agentId ? `#/org/${route.orgId}/agent/${route.agentId}` : `#/org/${route.orgId}`;
}

export function isUuid(value: string): boolean {
  return UUID.test(value);
}
