import { randomUUID } from 'node:crypto';
import type { SyncEvent, SyncFrame } from '@openagents/sync-protocol';

/** Body of a peer's `POST /publish`: append `count` Message-like events to `scope`. */
export interface PublishRequest {
  scope: string;
  count: number;
  /** Length of each event's `content`, so payload sizes match the real workload. */
  contentBytes: number;
}

/** Largest publish body a peer reads; more is 413. */
export const MAX_PUBLISH_BODY = 256 * 1024;
const MAX_COUNT = 500;
const MAX_CONTENT = 64 * 1024;

/** Validates a publish body; undefined when it is not one. */
export function parsePublishRequest(text: string): PublishRequest | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== 'object' || body === null) return undefined;
  const { scope, count = 1, contentBytes = 64 } = body as Record<string, unknown>;
  if (typeof scope !== 'string' || scope.length === 0 || scope.length > 200) return undefined;
  if (!Number.isInteger(count) || (count as number) < 1 || (count as number) > MAX_COUNT) return undefined;
  if (
    !Number.isInteger(contentBytes) ||
    (contentBytes as number) < 0 ||
    (contentBytes as number) > MAX_CONTENT
  )
    return undefined;
  return { scope, count: count as number, contentBytes: contentBytes as number };
}

/**
 * Per-scope event ids for a peer: 1, 2, 3, ... like the real log. A peer node only assigns ids for
 * the scopes routed to it (the driver sends each scope's publishes to one node), so ids stay
 * contiguous without a shared counter.
 */
export class ScopeSequences {
  readonly #heads = new Map<string, number>();

  head(scope: string): number {
    return this.#heads.get(scope) ?? 0;
  }

  /** Reserves `count` ids and returns the first. */
  reserve(scope: string, count: number): number {
    const first = this.head(scope) + 1;
    this.#heads.set(scope, first + count - 1);
    return first;
  }
}

/** The `sync` frame a peer fans out: the same shape the gateway sends (contract section 7). */
export function buildSyncFrame(
  scope: string,
  firstId: number,
  count: number,
  contentBytes: number,
): SyncFrame {
  const now = new Date().toISOString();
  const agentId = scope.startsWith('agent:') ? scope.slice(6) : randomUUID();
  const content = 'x'.repeat(contentBytes);
  const events: SyncEvent[] = [];
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    events.push({
      id: firstId + i,
      scope,
      model: 'Message',
      model_id: id,
      action: 'insert',
      data: { id, agent_id: agentId, role: 'user', content, created_at: now, updated_at: now },
      mutationId: null,
      created_at: now,
    });
  }
  return { type: 'sync', scope, events, latestSyncId: firstId + count - 1 };
}

/** What a peer answers to a subscribe: an empty snapshot at the scope's head, like a bootstrap. */
export function bootstrapAt(scope: string, lastSyncId: number) {
  return { type: 'bootstrap' as const, scope, models: {}, lastSyncId };
}
