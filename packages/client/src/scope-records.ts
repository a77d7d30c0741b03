import {
  MODEL_NAMES,
  type ModelName,
  type ModelRecords,
  SCOPE_KEYS,
  scopeOf,
} from '@openagents/sync-protocol';
import type { RecordsByModel, SyncState } from './types';

/** The records of one scope, grouped by model. */
export type ScopeRecords = { readonly [M in ModelName]: Readonly<Record<string, ModelRecords[M]>> };

const EMPTY: Readonly<Record<string, never>> = Object.freeze({});

/**
 * A memoised selector for the records of one scope. It recomputes a model only when that
 * model's map changed, and returns the previous object (same identity) when the scope's slice
 * did not actually change — so it can feed a React selector without extra renders.
 *
 * @example
 * const selectAgent = createScopeSelector(`agent:${id}`);
 * const { Message, ReasoningStep } = selectAgent(client.getState());
 */
export function createScopeSelector(scope: string): (state: SyncState) => ScopeRecords {
  const prefix = scope.slice(0, scope.indexOf(':'));
  let lastSources: RecordsByModel | undefined;
  let last: ScopeRecords | undefined;
  return (state) => {
    const records = state.records;
    if (records === lastSources && last) return last;
    const next = {} as Record<ModelName, Readonly<Record<string, unknown>>>;
    let changed = !last;
    for (const m of MODEL_NAMES) {
      const source = records[m] as Record<string, Record<string, unknown>>;
      const before = last?.[m] as Readonly<Record<string, unknown>> | undefined;
      if (SCOPE_KEYS[m].prefix !== prefix) {
        next[m] = EMPTY;
        continue;
      }
      if (lastSources && before && lastSources[m] === source) {
        next[m] = before;
        continue;
      }
      const slice: Record<string, unknown> = {};
      let count = 0;
      let same = !!before;
      for (const id in source) {
        const row = source[id]!;
        if (scopeOf(m, row) !== scope) continue;
        slice[id] = row;
        count++;
        if (same && before![id] !== row) same = false;
      }
      if (same && before && Object.keys(before).length === count) next[m] = before;
      else {
        next[m] = count === 0 ? EMPTY : slice;
        changed = true;
      }
    }
    lastSources = records;
    if (changed) last = next as ScopeRecords;
    return last!;
  };
}
