import type { ScopeRecords, SyncState } from './types';

/**
 * A selector for the records of one scope: each model as a list in commit order. It is O(1)
 * (the lists are maintained by the store) and returns the same object while none of the scope's
 * lists changed, so it can feed a React selector without extra renders.
 *
 * @example
 * const selectAgent = createScopeSelector(`agent:${id}`);
 * const { Message, ReasoningStep } = selectAgent(client.getState());
 */
export function createScopeSelector(scope: string): (state: SyncState) => ScopeRecords {
  return (state) => state.records.scope(scope);
}
