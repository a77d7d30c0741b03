import { useCallback, useMemo, useSyncExternalStore } from 'react';
import { type ConsoleRoute, formatRoute, parseRoute } from './route';

function subscribe(onChange: () => void): () => void {
  window.addEventListener('hashchange', onChange);
  return () => window.removeEventListener('hashchange', onChange);
}

const currentHash = () => window.location.hash;

/** The route in the URL hash, and a function to move to another one. */
export function useHashRoute(): [ConsoleRoute, (route: ConsoleRoute) => void] {
  const hash = useSyncExternalStore(subscribe, currentHash);
  const route = useMemo(() => parseRoute(hash, window.location.search), [hash]);
  const navigate = useCallback((next: ConsoleRoute) => {
    window.location.hash = formatRoute(next);
  }, []);
  return [route, navigate];
}
