import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PeerKind } from './peer-kind';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A peer node running as its own process (as the gateway does), for the bench and tests. */
export interface PeerProcess {
  kind: PeerKind;
  port: number;
  url: string;
  pid: number;
  output: string[];
  stop(): Promise<void>;
}

/** Spawns `loadtest/peers/main.ts` and waits until `/readyz` answers (bounded). */
export async function launchPeer(
  kind: PeerKind,
  options: { port: number; redisUrl?: string; channelPrefix?: string; timeoutMs?: number },
): Promise<PeerProcess> {
  const args = ['--import', 'tsx', 'loadtest/peers/main.ts', kind, '--port', String(options.port)];
  if (options.redisUrl) args.push('--redis', options.redisUrl);
  if (options.channelPrefix) args.push('--prefix', options.channelPrefix);
  const proc: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    output.push(...chunk.toString().split('\n').filter(Boolean));
    if (output.length > 500) output.splice(0, output.length - 500);
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${options.port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`peer ${kind} exited:\n${output.join('\n')}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`peer ${kind} not ready:\n${output.join('\n')}`);
    }
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    kind,
    port: options.port,
    url,
    pid: proc.pid!,
    output,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
