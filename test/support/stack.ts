import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export type ServiceName = 'api' | 'delta' | 'gateway' | 'standalone';

export interface ServiceProcess {
  name: ServiceName;
  port: number;
  url: string;
  env: Record<string, string>;
  proc: ChildProcess;
  /** Lines the process wrote (stdout and stderr), for assertions and post-mortems. */
  output: string[];
  /** Sends a signal and waits for exit. SIGKILL simulates a crash. */
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/**
 * Starts one service as its own Node process (`services/<name>/src/main.ts`), exactly as
 * `npm run start:<name>` would, and waits until its `/readyz` answers 200.
 */
export async function startService(
  name: ServiceName,
  options: { port: number; env: Record<string, string>; readyTimeoutMs?: number; waitReady?: boolean },
): Promise<ServiceProcess> {
  const env = { ...process.env, LOG_LEVEL: 'warn', ...options.env, PORT: String(options.port) };
  const proc = spawn(process.execPath, ['--import', 'tsx', `services/${name}/src/main.ts`], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line) output.push(line);
    if (output.length > 5000) output.splice(0, output.length - 5000);
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const service: ServiceProcess = {
    name,
    port: options.port,
    url: `http://127.0.0.1:${options.port}`,
    env: options.env,
    proc,
    output,
    exited,
    async kill(signal = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
  if (options.waitReady !== false) await waitReady(service, options.readyTimeoutMs ?? 30_000);
  return service;
}

/** Polls `/readyz` until it answers 200; throws with the process output if it exits or times out. */
export async function waitReady(service: ServiceProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (service.proc.exitCode !== null || service.proc.signalCode !== null) {
      throw new Error(
        `${service.name} exited (${service.proc.exitCode}):\n${service.output.slice(-30).join('\n')}`,
      );
    }
    try {
      const res = await fetch(`${service.url}/readyz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${service.name} not ready after ${timeoutMs} ms:\n${service.output.slice(-30).join('\n')}`,
  );
}
