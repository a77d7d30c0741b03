import type { SyncState } from '@openagents/sync-client';
import { useMemo } from 'react';
import { useStore } from 'zustand';
import { useSyncStore } from './context';

/**
 * Selects a slice of the sync state; the component re-renders only when `equalityFn` says the
 * slice changed (default `Object.is`, which suits the client's identity-preserving records; pass
 * `shallow` from this package for derived arrays or objects).
 *
 * @example
 * const names = useSyncSelector((s) => Object.values(s.records.Agent).map((a) => a.name), shallow);
 */
export function useSyncSelector<T>(
  selector: (state: SyncState) => T,
  equalityFn: (a: T, b: T) => boolean = Object.is,
): T {
  const store = useSyncStore();
  // The memo returns the previous slice while it is equal, which keeps useSyncExternalStore from
  // seeing a "new" snapshot — and from re-rendering — when an unrelated part of the state moved.
  const memoSelector = useMemo(() => {
    let has = false;
    let lastState: SyncState;
    let lastSlice: T;
    return (state: SyncState): T => {
      if (has && state === lastState) return lastSlice;
      const slice = selector(state);
      lastState = state;
      if (has && equalityFn(lastSlice, slice)) return lastSlice;
      has = true;
      lastSlice = slice;
      return slice;
    };
  }, [selector, equalityFn]);
  return useStore(store, memoSelector);
}
