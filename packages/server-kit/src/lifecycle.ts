/**
 * The lifecycle every service shares. `start` opens ports and begins work; `drain` stops taking
 * new work (readiness turns 503) and lets in-flight work finish; `stop` releases everything.
 */
export interface Service {
  start(): Promise<void>;
  drain(): Promise<void>;
  stop(): Promise<void>;
}

/** Where signals come from and how the process ends: `process`, or a fake in tests. */
export interface SignalSource {
  once(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  exit(code: number): void;
}

/**
 * Wires SIGTERM/SIGINT to drain then stop, once, then exits 0. A second signal exits 1 at once
 * (an operator who presses Ctrl-C twice means it). An error while draining or stopping is logged
 * and the process still exits: a stuck shutdown would only be killed later, with less said.
 */
export function handleSignals(
  service: Pick<Service, 'drain' | 'stop'>,
  log: { info: (msg: string) => void; error?: (obj: object, msg: string) => void },
  signals: SignalSource = process,
): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return signals.exit(1);
    stopping = true;
    log.info(`${signal} received: draining`);
    void (async () => {
      try {
        await service.drain();
        await service.stop();
      } catch (err) {
        log.error?.({ err }, 'error while shutting down');
      } finally {
        signals.exit(0);
      }
    })();
  };
  signals.once('SIGTERM', () => onSignal('SIGTERM'));
  signals.once('SIGINT', () => onSignal('SIGINT'));
}

/**
 * Several services run as one (the standalone server: gateway, api, delta; a Hono service and
 * its HTTP listener). `start` starts the parts in order and stops at the first failure (the
 * caller then calls `stop`, which covers the part that failed half-way too); `drain` drains every part at once (each waits for its own in-flight work, so the
 * slowest bounds the whole, and none is skipped); `stop` stops the parts in reverse order, each
 * one even when an earlier one failed, then throws the first failure.
 */
export function composeServices(parts: readonly Service[]): Service {
  let started: Service[] = [];
  const stopStarted = async () => {
    const running = started.reverse();
    started = [];
    let failure: unknown;
    for (const part of running) {
      try {
        await part.stop();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  };
  return {
    async start() {
      for (const part of parts) {
        started.push(part);
        await part.start();
      }
    },
    async drain() {
      const results = await Promise.allSettled(started.map((part) => part.drain()));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    stop: stopStarted,
  };
}
