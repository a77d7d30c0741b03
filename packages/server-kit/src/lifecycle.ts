/**
 * The lifecycle every service shares. `start` opens ports and begins work; `drain` stops taking
 * new work (readiness turns 503) and lets in-flight work finish; `stop` releases everything.
 */
export interface Service {
  start(): Promise<void>;
  drain(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Wires SIGTERM/SIGINT to drain then stop, once. A second signal exits at once.
 */
export function handleSignals(
  service: Pick<Service, 'drain' | 'stop'>,
  log: { info: (msg: string) => void },
): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info(`${signal} received: draining`);
    void (async () => {
      try {
        await service.drain();
        await service.stop();
      } finally {
        process.exit(0);
      }
    })();
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}
