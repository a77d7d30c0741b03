import { composeServices, handleSignals, type Service, type SignalSource } from './lifecycle';
import { createLogger, type Logger } from './logger';
import { httpListener } from './serve-http';

/** How a Hono service is served: its counted fetch on its port. */
export interface HttpServing {
  port: number;
  fetch: (request: Request, env?: unknown) => Response | Promise<Response>;
  /** Options for node:http's createServer, e.g. `{ maxHeaderSize }`. */
  serverOptions?: Record<string, unknown>;
}

/** Where a process's outside world is: the environment, stderr, signals and exit. */
export interface ProcessIo extends SignalSource {
  env: Record<string, string | undefined>;
  stderr: { write(text: string): unknown };
}

/**
 * The whole of a service's main.ts: read the config (a bad value stops the process with exit
 * code 1 and a message naming each variable, never a stack trace), build the service, wire
 * SIGTERM/SIGINT to drain then stop, start it, and serve its fetch when it has one (`http`; the
 * gateway and the standalone server open their port themselves). A failed start is logged and
 * exits 1; `isSetupError` marks failures whose message alone says the fix (printed without a
 * stack trace).
 *
 * @example
 *   await runService({ name: 'api', loadConfig: loadApiConfig, create: createApiService,
 *     http: (service, config) => ({ port: config.PORT, fetch: service.fetch }) });
 */
export async function runService<C extends { LOG_LEVEL: string }, S extends Service>(options: {
  /** Short name: the logger's name; the process calls itself `sync-<name>`. */
  name: string;
  loadConfig: (env: Record<string, string | undefined>) => C;
  create: (deps: { config: C; log: Logger }) => S;
  http?: (service: S, config: C) => HttpServing;
  isSetupError?: (err: unknown) => boolean;
  io?: ProcessIo;
}): Promise<{ service: S; config: C; log: Logger }> {
  const io = options.io ?? process;
  const label = `sync-${options.name}`;
  const refuse = (message: string): never => {
    io.stderr.write(`${label}: refusing to start: ${message}\n`);
    io.exit(1);
    throw new Error(message); // io.exit does not return in a real process
  };
  let built: { service: S; config: C; log: Logger };
  try {
    const config = options.loadConfig(io.env);
    const log = createLogger({ name: options.name, level: config.LOG_LEVEL });
    built = { service: options.create({ config, log }), config, log };
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    return refuse(err.message);
  }
  const { service, config, log } = built;
  const serving = options.http?.(service, config);
  const whole = serving
    ? composeServices([service, httpListener({ name: options.name, log, ...serving })])
    : service;
  handleSignals(whole, log, io);
  try {
    await whole.start();
  } catch (err) {
    await whole.stop().catch(() => {});
    if (options.isSetupError?.(err)) return refuse((err as Error).message);
    log.fatal({ err }, `${label} failed to start`);
    io.exit(1);
    throw err;
  }
  return built;
}
