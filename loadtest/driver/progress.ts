/** A live status line on stderr, redrawn every second while a scenario runs; silent off a TTY. */
export interface Progress {
  start(label: string, line: () => Promise<string> | string): void;
  stop(): void;
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  let timer: NodeJS.Timeout | undefined;
  let started = 0;
  let busy = false;
  const enabled = stream.isTTY === true;
  return {
    start(label, line) {
      if (!enabled) return;
      started = performance.now();
      timer = setInterval(async () => {
        if (busy) return;
        busy = true;
        try {
          const seconds = ((performance.now() - started) / 1000).toFixed(1);
          const text = `${label} ${seconds}s ${await line()}`;
          stream.write(`\r\x1b[2K${text.slice(0, (stream.columns ?? 120) - 1)}`);
        } catch {
          // a snapshot may fail while workers shut down; the next tick tries again
        } finally {
          busy = false;
        }
      }, 1000);
      timer.unref();
    },
    stop() {
      if (!timer) return;
      clearInterval(timer);
      timer = undefined;
      stream.write('\r\x1b[2K');
    },
  };
}

/** A progress that never prints (tests, the bench). */
export const silentProgress: Progress = { start() {}, stop() {} };
