import { check } from 'k6';
import http from 'k6/http';
import { API_URL, DELTA_URL } from './config.ts';

/** What the api answers to a write (contract section 4). */
export interface WriteAnswer {
  data: { id: string };
  scope: string;
  syncId: number;
}

function headers(token: string) {
  return { 'content-type': 'application/json', authorization: `Bearer ${token}` };
}

/** Creates an agent in `orgId`; returns its scope `agent:<id>` (throws when the write fails). */
export function createAgent(token: string, orgId: string, name: string): string {
  const res = http.post(`${API_URL}/api/agents`, JSON.stringify({ org_id: orgId, name }), {
    headers: headers(token),
    tags: { name: 'create_agent' },
  });
  if (res.status !== 201) throw new Error(`create agent: ${res.status} ${String(res.body).slice(0, 200)}`);
  return `agent:${(res.json() as unknown as WriteAnswer).data.id}`;
}

/** Appends one Message to an agent scope; returns the answer, or undefined when not 201. */
export function writeMessage(token: string, scope: string, content: string): WriteAnswer | undefined {
  const res = http.post(
    `${API_URL}/api/messages`,
    JSON.stringify({ agent_id: scope.slice('agent:'.length), role: 'user', content }),
    { headers: headers(token), tags: { name: 'write_message' } },
  );
  const ok = check(res, { 'write acknowledged (201)': (r) => r.status === 201 });
  return ok ? (res.json() as unknown as WriteAnswer) : undefined;
}

/** Appends `count` Messages in one transaction via POST /api/mutations; returns the sync ids. */
export function writeMessages(token: string, scope: string, count: number, content: string): number[] {
  const mutations = Array.from({ length: count }, () => ({
    model: 'Message',
    action: 'insert',
    data: { agent_id: scope.slice('agent:'.length), role: 'user', content },
  }));
  const res = http.post(`${API_URL}/api/mutations`, JSON.stringify({ mutations }), {
    headers: headers(token),
    tags: { name: 'write_batch' },
    timeout: '60s',
  });
  const ok = check(res, { 'batch acknowledged (200)': (r) => r.status === 200 });
  if (!ok) return [];
  return (res.json() as unknown as { results: WriteAnswer[] }).results.map((r) => r.syncId);
}

/** GET /sync/delta: events after `lastSyncId` (at most `limit`) and the scope's head. */
export function readDelta(
  token: string,
  scope: string,
  lastSyncId: number,
  limit = 1000,
): { events: { id: number; created_at: string }[]; latestSyncId: number } | undefined {
  const res = http.get(
    `${DELTA_URL}/sync/delta?scope=${encodeURIComponent(scope)}&lastSyncId=${lastSyncId}&limit=${limit}`,
    { headers: headers(token), tags: { name: 'delta' } },
  );
  if (res.status !== 200) return undefined;
  return res.json() as unknown as { events: { id: number; created_at: string }[]; latestSyncId: number };
}

/** A random v4 uuid (k6 has no crypto.randomUUID). */
export function uuid(): string {
  return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
    const r = (Math.random() * 16) | 0;
    return (c === 'x' ? r : (r & 0x3) | 0x8).toString(16);
  });
}
