import { type Bus, type BusHandler, type BusMessage, HandlerTable } from './bus';

/**
 * The in-process bus of the standalone server: one process holds the writers and the gateway, so
 * a publish is delivered on the next microtask to this process's handlers only.
 */
export function createMemoryBus(): Bus {
  const table = new HandlerTable();
  let closed = false;
  return {
    kind: 'memory',
    async publish(message: BusMessage) {
      if (closed) throw new Error('bus closed');
      queueMicrotask(() => table.dispatch(message));
    },
    async subscribe(scope: string, handler: BusHandler) {
      table.add(scope, handler);
      return async () => {
        table.remove(scope, handler);
      };
    },
    onStatus: (listener) => table.onStatus(listener),
    isHealthy: () => !closed,
    activeScopes: () => table.size,
    async close() {
      closed = true;
    },
  };
}
