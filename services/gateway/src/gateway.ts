import { CLOSE_CODES } from '@openagents/sync-protocol';
import {
  type Auth,
  type Bus,
  createOpsRoutes,
  type DeltaSource,
  type Logger,
  type ReadinessCheck,
  type Registry,
} from '@openagents/sync-server-kit';
import { queueBootstraps } from './bootstrap-queue';
import type { GatewayConfig } from './config';
import { ConnectionLimits } from './connection-limits';
import { ConnectionRegistry, type Socket, type UserData } from './connection-registry';
import { closesDue, drainOrder, drainTickMs } from './drain-schedule';
import { ExpiryWheel } from './expiry-wheel';
import { createFrameHandler } from './frame-handler';
import { FrameWriter } from './frame-writer';
import { type HandlerFailed, handlerFailure } from './handler-failure';
import { type BridgeOptions, bridgeHttp, type FetchHandler, writeJson } from './http-bridge';
import { createLogReads, type LogReads } from './log-reads';
import { closeCodeLabel, createGatewayMetrics, type GatewayMetrics } from './metrics';
import { ScopeRegistry } from './scope-registry';
import { SlowConsumerPolicy, uwsBackpressureLimit, wakeWriters } from './slow-consumer';
import { type ChannelServices, SocketChannel } from './socket-channel';
import { createUpgradeHandler, refuseHost } from './upgrade';
import {
  compressOptions,
  type HttpRequest,
  type HttpResponse,
  listenExclusive,
  type TemplatedApp,
  type us_listen_socket,
  uWS,
  type WebSocketBehavior,
} from './uws';

export type { UserData } from './connection-registry';

export interface GatewayDeps {
  config: GatewayConfig;
  auth: Auth;
  bus: Bus;
  delta: DeltaSource;
  log: Logger;
  registry: Registry;
  /**
   * Serves every HTTP request that is not the `/sync` upgrade nor an ops route (the standalone
   * server passes its Hono app's `fetch` here to serve the API and delta on the same port).
   */
  http?: FetchHandler;
  /** Body limit of requests bridged to `http`, in bytes (default 1 MiB, the API's BODY_LIMIT_BYTES default). */
  httpBodyLimitBytes?: number;
  /**
   * Requests to `http` whose body is handed on as it arrives, unbounded by `httpBodyLimitBytes`
   * (the handler bounds it): see `BridgeOptions.streamsBody`. None by default.
   */
  httpStreamsBody?: (method: string, path: string) => boolean;
  /** More readiness checks, merged into `/readyz` (e.g. the database in the standalone server). */
  readiness?: ReadinessCheck;
  /** Random source for the drain order (tests may fix it). */
  random?: () => number;
  /**
   * Whether to serve a request that carries this `Host` header; others get 403 before anything
   * else happens (the standalone server's DNS-rebinding defence). Every host when omitted.
   */
  acceptsHost?: (host: string) => boolean;
}

export interface Gateway {
  readonly app: TemplatedApp;
  /** Opens the port (0 picks a free one) on `host` (every interface when omitted); resolves with the port. */
  listen(port?: number, host?: string): Promise<number>;
  /** The listening port, or 0 before `listen`. */
  readonly port: number;
  readonly draining: boolean;
  /** Open connections on this node. */
  readonly connectionCount: number;
  readonly metrics: GatewayMetrics;
  /**
   * Turns `/readyz` to 503, refuses new upgrades with 503 and closes every connection with 1012
   * spread evenly over DRAIN_WINDOW_MS in random order, so the clients reconnect elsewhere without
   * arriving all at once. Resolves when the last one is closed.
   */
  drain(): Promise<void>;
  /** Closes the port, the remaining connections (1001) and the node's bus channels. */
  stop(): Promise<void>;
}

/** What uWS itself accepts as one frame: well above MAX_FRAME_BYTES (see the ws behaviour). */
export function frameHardCap(maxFrameBytes: number): number {
  return Math.max(maxFrameBytes * 4, 1024 * 1024);
}

/** The node's parts, built once per gateway and shared by every connection. */
interface Parts {
  deps: GatewayDeps;
  app: TemplatedApp;
  metrics: GatewayMetrics;
  connections: ConnectionRegistry;
  limits: ConnectionLimits;
  slowConsumers: SlowConsumerPolicy;
  writer: FrameWriter;
  reads: LogReads;
  streams: ScopeRegistry;
  expiries: ExpiryWheel<Socket>;
  channels: ChannelServices;
  failed: HandlerFailed;
  state: { draining: boolean };
}

/**
 * The live stream: `/sync` WebSocket upgrades, subscriptions with gap-free catch-up, one ordered
 * fan-out per scope per node, and the ops routes, on one uWebSockets.js app.
 *
 * The parts, each in its own module: the connection registry (connection-registry.ts), client
 * frames (frame-handler.ts, token-refresh.ts), fan-out and serialisation (frame-writer.ts), the
 * slow-consumer policy (slow-consumer.ts), upgrade and auth (upgrade.ts), the drain schedule
 * (drain-schedule.ts), the per-scope streams (scope-registry.ts, scope-stream.ts) and the
 * subscribe flow (subscription.ts). This function wires them to uWS and owns the lifecycle.
 *
 * @example
 *   const gateway = createGateway({ config, auth, bus, delta, log, registry });
 *   await gateway.listen(config.PORT);
 */
export function createGateway(deps: GatewayDeps): Gateway {
  const parts = buildParts(deps);
  const { app, connections, metrics, streams } = parts;
  app.ws<UserData>('/sync', socketBehaviour(parts));
  app.any('/*', httpRoutes(parts));
  const unsubscribeStatus = deps.bus.onStatus((status) => {
    try {
      busStatusChanged(parts, status);
    } catch (err) {
      parts.failed('bus', err);
    }
  });
  let listenSocket: us_listen_socket | undefined;
  let port = 0;
  let headTimer: NodeJS.Timeout | undefined;
  return {
    app,
    metrics,
    get port() {
      return port;
    },
    get draining() {
      return parts.state.draining;
    },
    get connectionCount() {
      return connections.size;
    },
    async listen(requested = deps.config.PORT, host?: string) {
      listenSocket = await listenOn(app, requested, host);
      port = uWS.us_socket_local_port(listenSocket as never);
      headTimer = startHeadChecks(parts);
      deps.log.info({ port, host }, 'gateway listening');
      return port;
    },
    async drain() {
      if (parts.state.draining) return;
      parts.state.draining = true;
      await drainConnections(parts);
    },
    async stop() {
      clearInterval(headTimer);
      parts.expiries.stop();
      unsubscribeStatus();
      if (listenSocket) {
        uWS.us_listen_socket_close(listenSocket);
        listenSocket = undefined;
      }
      for (const ws of connections.list()) {
        if (connections.isOpen(ws)) ws.end(CLOSE_CODES.goingAway, 'server stopping');
      }
      streams.closeAll();
    },
  };
}

function buildParts(deps: GatewayDeps): Parts {
  const { config, log } = deps;
  const connections = new ConnectionRegistry();
  const metrics = createGatewayMetrics(deps.registry, { sendBuffers: () => connections.bufferedAmounts() });
  const app = uWS.App();
  const slowConsumers = new SlowConsumerPolicy({
    connections,
    metrics,
    log,
    maxBackpressureBytes: config.MAX_BACKPRESSURE_BYTES,
  });
  // `failed` answers with an error frame through the writer, which reports through `failed`.
  let writer: FrameWriter | undefined;
  const failed = handlerFailure({
    connections,
    metrics,
    log,
    sendError: (ws, code, message) => writer?.sendError(ws, code, message),
  });
  writer = new FrameWriter({
    app,
    connections,
    metrics,
    slowConsumers,
    failed,
    compress: config.WS_COMPRESSION !== 'off',
  });
  const fanOutWriter = writer;
  const reads = createLogReads(queueBootstraps(deps.delta, config.DELTA_BOOTSTRAP_CONCURRENCY), { metrics });
  const streams = new ScopeRegistry({
    bus: deps.bus,
    reads,
    metrics,
    log,
    holdMs: config.REORDER_HOLD_MS,
    fanOut: (stream, events) => fanOutWriter.fanOut(stream.scope, events),
  });
  const expiries = new ExpiryWheel<Socket>((ws) => closeExpired(connections, log, failed, ws));
  return {
    deps,
    app,
    metrics,
    connections,
    limits: new ConnectionLimits(config),
    slowConsumers,
    writer,
    reads,
    streams,
    expiries,
    channels: { connections, writer, slowConsumers, metrics },
    failed,
    state: { draining: false },
  };
}

/** The token of this connection expired: closed with 1008 (one shared timer for all of them). */
function closeExpired(connections: ConnectionRegistry, log: Logger, failed: HandlerFailed, ws: Socket) {
  if (!connections.isOpen(ws)) return;
  try {
    log.info({ conn: ws.getUserData().id }, 'token expired; closing');
    ws.end(CLOSE_CODES.policyViolation, 'token expired');
  } catch (err) {
    failed('expiry', err, ws, true);
  }
}

/** uWS's handlers of `/sync`: each one catches what it throws (a throw would end the process). */
function socketBehaviour(parts: Parts): WebSocketBehavior<UserData> {
  const { deps, connections, metrics, failed } = parts;
  const { config, log } = deps;
  const upgrade = createUpgradeHandler({
    config,
    auth: deps.auth,
    limits: parts.limits,
    metrics,
    log,
    isDraining: () => parts.state.draining,
    newConnectionId: () => connections.newId(),
    acceptsHost: deps.acceptsHost,
  });
  return {
    // uWS drops a connection whose frame exceeds maxPayloadLength without a close frame (the
    // client sees 1006). So uWS gets a higher hard cap and the message handler closes anything
    // over MAX_FRAME_BYTES with a proper 1009; only a frame beyond the hard cap is cut abruptly.
    // A compressed client frame counts by its inflated size: uWS stops inflating past this cap
    // (a deflate bomb is cut like any frame past it) and the handler applies MAX_FRAME_BYTES.
    maxPayloadLength: frameHardCap(config.MAX_FRAME_BYTES),
    // permessage-deflate, negotiated with clients that offer it (WS_COMPRESSION; off by default).
    compression: compressOptions(config.WS_COMPRESSION),
    idleTimeout: config.IDLE_TIMEOUT_SECONDS,
    sendPingsAutomatically: true,
    // SlowConsumerPolicy closes a slow client with 1013 at MAX_BACKPRESSURE_BYTES plus its
    // catch-up allowance; uWS's own limit is the last resort (see uwsBackpressureLimit).
    maxBackpressure: uwsBackpressureLimit(config.MAX_BACKPRESSURE_BYTES),
    closeOnBackpressureLimit: 1,
    drain(ws) {
      try {
        parts.slowConsumers.drained(ws);
      } catch (err) {
        failed('drain', err, ws, true);
      }
    },
    upgrade(res, req, context) {
      try {
        upgrade(res, req, context);
      } catch (err) {
        failed('upgrade', err);
        try {
          writeJson(res, 500, { error: { code: 'internal', message: 'Internal error' } });
        } catch {}
      }
    },
    open: (ws) => socketOpened(parts, ws),
    message: createFrameHandler({
      config,
      auth: deps.auth,
      metrics,
      log,
      writer: parts.writer,
      expiries: parts.expiries,
      subscriptions: { streams: parts.streams, reads: parts.reads, metrics, log },
      failed,
    }),
    close: (ws, code, message) => socketClosed(parts, ws, code, message),
  };
}

function socketOpened(parts: Parts, ws: Socket): void {
  const { connections, metrics } = parts;
  try {
    const ud = ws.getUserData();
    ud.channel = new SocketChannel(ws, ud, parts.channels);
    connections.opened(ws);
    metrics.connections.set(connections.size);
    // Closed with 1008 when the token expires (one shared timer for all connections).
    parts.expiries.add(ws, ud.principal.exp * 1000);
    parts.deps.log.info({ conn: ud.id, sub: ud.principal.sub }, 'connection opened');
  } catch (err) {
    parts.failed('open', err, ws, true);
  }
}

function socketClosed(parts: Parts, ws: Socket, code: number, message: ArrayBuffer): void {
  const { connections, metrics, limits } = parts;
  try {
    const ud = ws.getUserData();
    ud.closed = true;
    parts.expiries.remove(ws, ud.principal.exp * 1000);
    connections.closed(ws);
    limits.releaseIp(ud.ip);
    limits.releaseSubject(ud.principal.sub);
    metrics.connections.set(connections.size);
    for (const subscription of [...ud.subscriptions]) subscription.close();
    wakeWriters(ud);
    metrics.disconnects.inc({ code: closeCodeLabel(code) });
    metrics.connectionDuration.observe((Date.now() - ud.openedAt) / 1000);
    parts.deps.log.info({ conn: ud.id, code, reason: closeReason(code, message) }, 'connection closed');
  } catch (err) {
    connections.closed(ws);
    parts.failed('close', err);
  }
}

/**
 * Why uWS dropped a connection without a close frame (1006), when it says: "Received invalid
 * UTF-8", "Received too big message", "WebSocket timed out from inactivity"; undefined when it
 * does not (a protocol violation, a client that hung up) and for every other code, whose
 * message is the gateway's own or the client's close reason (not worth a log field).
 */
function closeReason(code: number, message: ArrayBuffer): string | undefined {
  if (code !== 1006 || message.byteLength === 0) return undefined;
  return Buffer.from(message, 0, Math.min(message.byteLength, 128)).toString('utf8');
}

/** Every other HTTP request: the ops routes, 426 for a plain GET /sync, then `deps.http` or 404. */
function httpRoutes(parts: Parts): (res: HttpResponse, req: HttpRequest) => void {
  const { deps } = parts;
  const { bus } = deps;
  const ops = createOpsRoutes({
    registry: deps.registry,
    isDraining: () => parts.state.draining,
    // Redis and the delta service are shared by every gateway: reported, never a reason for 503
    // (contract §8), since a gateway without them still serves its clients through head checks.
    readiness: async () => ({
      ...(bus.kind === 'memory' ? { bus: bus.isHealthy() } : {}),
      ...(deps.readiness ? await deps.readiness() : {}),
    }),
    dependencies: async () => ({
      ...(bus.kind === 'redis' ? { redis: bus.isHealthy() } : {}),
      delta: parts.streams.deltaReachable,
    }),
  });
  const bridgeOptions: BridgeOptions = {
    maxBodyBytes: deps.httpBodyLimitBytes ?? 1024 * 1024,
    log: deps.log,
    // A body is read only once its bearer token verifies (docs/protocol.md, "HTTP bridge").
    authenticate: (token) =>
      deps.auth.verify(token).then(
        () => true,
        () => false,
      ),
    onError: (err) => parts.failed('http', err),
  };
  // Only the app's routes stream; the ops routes are bridged with every body bounded.
  const appBridgeOptions: BridgeOptions = deps.httpStreamsBody
    ? { ...bridgeOptions, streamsBody: deps.httpStreamsBody }
    : bridgeOptions;
  const route = (res: HttpResponse, req: HttpRequest) => {
    if (refuseHost(deps.acceptsHost, res, req)) return;
    const url = req.getUrl();
    if (url === '/healthz' || url === '/readyz' || url === '/metrics') {
      bridgeHttp(res, req, ops.fetch, bridgeOptions);
    } else if (url === '/sync') {
      writeJson(res, 426, { error: { code: 'bad_request', message: 'GET /sync is a WebSocket endpoint' } });
    } else if (deps.http) {
      bridgeHttp(res, req, deps.http, appBridgeOptions);
    } else {
      writeJson(res, 404, { error: { code: 'not_found', message: 'Not found' } });
    }
  };
  // A throw into uWS ends the process, and with it every connection (1006 for all of them).
  return (res, req) => {
    try {
      route(res, req);
    } catch (err) {
      parts.failed('http', err);
      try {
        writeJson(res, 500, { error: { code: 'internal', message: 'Internal error' } });
      } catch {}
    }
  };
}

function busStatusChanged(parts: Parts, status: 'up' | 'down'): void {
  const { metrics, deps } = parts;
  if (status === 'down') {
    metrics.busUp.set(0);
    deps.log.warn('bus down: live events paused; not ready');
    return;
  }
  metrics.busUp.set(1);
  metrics.busReconnects.inc();
  deps.log.info({ scopes: parts.streams.size }, 'bus back: filling every active scope from the log');
  parts.streams.fillAll();
}

/**
 * Opens the port for this process alone. uWS binds with SO_REUSEPORT unless told otherwise, so a
 * second server on a taken port (another gateway, a leftover `npm start`) would not fail: the
 * kernel would silently split new connections between the two, and clients landing on the other
 * process would drop (1006) whenever it stops. Exclusive, such a start fails with "could not listen".
 */
function listenOn(app: TemplatedApp, port: number, host: string | undefined): Promise<us_listen_socket> {
  return new Promise((resolve, reject) => {
    const onListen = (socket: us_listen_socket | false) => {
      if (socket) resolve(socket);
      else reject(new Error(`gateway could not listen on port ${port} (in use?)`));
    };
    listenExclusive(app, host, port, onListen);
  });
}

/** The bus gauge and the head check, now and every HEAD_CHECK_INTERVAL_MS. */
function startHeadChecks(parts: Parts): NodeJS.Timeout {
  const { metrics, deps } = parts;
  const tick = () => {
    metrics.busUp.set(deps.bus.isHealthy() ? 1 : 0);
    void parts.streams.checkHeads();
  };
  tick();
  return setInterval(tick, deps.config.HEAD_CHECK_INTERVAL_MS);
}

/** Closes every connection with 1012, in random order spread over DRAIN_WINDOW_MS (drain-schedule.ts). */
async function drainConnections(parts: Parts): Promise<void> {
  const { connections, deps } = parts;
  const sockets = drainOrder(connections.list(), deps.random ?? Math.random);
  const window = deps.config.DRAIN_WINDOW_MS;
  deps.log.info({ connections: sockets.length, windowMs: window }, 'draining');
  if (sockets.length === 0) return;
  const started = Date.now();
  await new Promise<void>((resolve) => {
    let closed = 0;
    const closeDue = () => {
      for (const due = closesDue(Date.now() - started, window, sockets.length); closed < due; closed++) {
        const ws = sockets[closed]!;
        try {
          if (connections.isOpen(ws))
            ws.end(CLOSE_CODES.serviceRestart, 'node draining; reconnect elsewhere');
        } catch (err) {
          parts.failed('drain', err);
        }
      }
      if (closed >= sockets.length) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(closeDue, drainTickMs(window, sockets.length));
    closeDue();
  });
}
