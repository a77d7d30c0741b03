import {
  type AuthFrame,
  CLOSE_CODES,
  ClientFrame,
  canonicalScope,
  type ServerFrame,
  type SubscribeFrame,
  type SyncEvent,
  scopeAllowed,
  unreachable,
  type WsErrorCode,
} from '@openagents/sync-protocol';
import {
  type Auth,
  type Bus,
  bearerToken,
  createOpsRoutes,
  type DeltaSource,
  type Logger,
  type Principal,
  type ReadinessCheck,
  type Registry,
  toAppError,
} from '@openagents/sync-server-kit';
import type { GatewayConfig } from './config';
import { ConnectionLimits, clientAddress, type IpRefusal } from './connection-limits';
import { ExpiryWheel } from './expiry-wheel';
import { type BridgeOptions, bridgeHttp, type FetchHandler, writeJson } from './http-bridge';
import { createLogReads } from './log-reads';
import { closeCodeLabel, createGatewayMetrics, type GatewayMetrics } from './metrics';
import { ScopeRegistry } from './scope-registry';
import type { ScopeStream } from './scope-stream';
import { type SubscriberChannel, Subscription } from './subscription';
import { newTokenBucket, type TokenBucket, takeToken } from './token-bucket';
import {
  type HttpRequest,
  type HttpResponse,
  SEND_STATUS,
  type TemplatedApp,
  type us_listen_socket,
  type us_socket_context_t,
  uWS,
  type WebSocket,
} from './uws';

/** Per-connection state, held by uWS as the socket's user data (never fields on the socket). */
export interface UserData {
  id: number;
  principal: Principal;
  /** Client address (socket peer, or the trusted proxy header): the key of the per-IP limits. */
  ip: string;
  /** Bumped by every `auth` frame; a verification that finishes after a newer one is ignored. */
  authGeneration: number;
  subscriptions: Map<string, Subscription>;
  bucket: TokenBucket;
  /**
   * Bytes of catch-up frames (bootstrap, replayed pages) sent since the send buffer was last
   * below the limit. A large snapshot legitimately fills the buffer; the slow-consumer limit
   * applies on top of it, so only live traffic the client fails to read counts against it.
   */
  catchUpBytes: number;
  /** Set first thing in the close handler: the socket must not be touched afterwards. */
  closed: boolean;
  /** When the upgrade was accepted (ms since epoch), for the connection-lifetime histogram. */
  openedAt: number;
  /** Paged bootstraps waiting for the send buffer to drain before their next page (or the close). */
  writableWaiters: (() => void)[];
  channel: SubscriberChannel | undefined;
}

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

/** Where an unexpected error was caught (the `where` label of sync_gateway_handler_errors_total). */
type HandlerSite =
  | 'message'
  | 'upgrade'
  | 'open'
  | 'close'
  | 'drain'
  | 'expiry'
  | 'bus'
  | 'fanout'
  | 'serialise'
  | 'http';

/** The uWS topic a scope's live fan-out is published on. */
const topicOf = (scope: string) => `scope:${scope}`;

/**
 * The live stream: `/sync` WebSocket upgrades, subscriptions with gap-free catch-up, one ordered
 * fan-out per scope per node, and the ops routes, on one uWebSockets.js app.
 *
 * @example
 *   const gateway = createGateway({ config, auth, bus, delta, log, registry });
 *   await gateway.listen(config.PORT);
 */
export function createGateway(deps: GatewayDeps): Gateway {
  const { config, auth, bus, log } = deps;
  const metrics = createGatewayMetrics(deps.registry, {
    sendBuffers: () => [...connections].map((ws) => ws.getBufferedAmount()),
  });
  const reads = createLogReads(deps.delta, { metrics });
  const app = uWS.App();
  const connections = new Set<WebSocket<UserData>>();
  /** Live sockets of each scope on this node: the topic subscribers, for counts and backpressure. */
  const liveSockets = new Map<string, Set<WebSocket<UserData>>>();
  let nextConnectionId = 1;
  let listenSocket: us_listen_socket | undefined;
  let port = 0;
  let draining = false;
  let headTimer: NodeJS.Timeout | undefined;
  const random = deps.random ?? Math.random;
  const rateLimits = {
    ratePerSecond: config.FRAME_RATE_PER_SECOND,
    burst: config.FRAME_BURST,
    closeAfter: config.FRAME_BURST,
  };

  const limits = new ConnectionLimits(config);

  /**
   * Every entry point (uWS callbacks, bus callbacks, timers) ends in a catch that calls this: an
   * unexpected error is counted, logged with the connection id (never its token) and costs at
   * most that connection — a throw out of any uWS or bus callback would end the whole process.
   */
  const handlerFailed = (where: HandlerSite, err: unknown, ws?: WebSocket<UserData>, close = false) => {
    metrics.handlerErrors.inc({ where });
    let conn: number | undefined;
    if (ws && connections.has(ws)) {
      try {
        conn = ws.getUserData().id;
      } catch {}
    }
    log.error({ where, conn, err: err instanceof Error ? err.message : String(err) }, 'handler failed');
    if (!ws || !connections.has(ws)) return;
    try {
      if (close) ws.end(CLOSE_CODES.internalError, 'internal error; reconnect and resume');
      else sendError(ws, 'internal', 'The frame could not be handled (internal error)');
    } catch {}
  };

  // `connections` holds exactly the sockets whose close handler has not run: touching a closed
  // uWS socket (even getUserData) throws, so every path that may hold a stale one checks it.
  const closeSlowConsumer = (ws: WebSocket<UserData>) => {
    if (!connections.has(ws)) return;
    const ud = ws.getUserData();
    if (ws.getBufferedAmount() <= config.MAX_BACKPRESSURE_BYTES + ud.catchUpBytes) return;
    metrics.slowConsumerCloses.inc();
    log.info({ conn: ud.id, buffered: ws.getBufferedAmount() }, 'closing slow consumer');
    ws.end(CLOSE_CODES.tryAgainLater, 'too slow: resume from your cursor');
  };

  /** uWS refused a message (past its hard cap): the stream has a hole now, so the socket must go. */
  const closeDroppedSocket = (ws: WebSocket<UserData>) => {
    if (!connections.has(ws)) return;
    metrics.slowConsumerCloses.inc();
    ws.end(CLOSE_CODES.tryAgainLater, 'too slow: resume from your cursor');
  };

  /**
   * Serialised catch-up frames by the shared object they were made from (a snapshot or a delta
   * page handed to many subscribers by single-flight and the resume cache). Weak: an entry lives
   * as long as its page does.
   */
  const sharedFrames = {
    bootstrap: new WeakMap<object, Buffer>(),
    reset: new WeakMap<object, Buffer>(),
    sync: new WeakMap<object, Buffer>(),
  };
  const serialise = (frame: ServerFrame, shareKey: object | undefined): Buffer => {
    const kind = frame.type === 'bootstrap' ? (frame.reset ? 'reset' : 'bootstrap') : frame.type;
    if (!shareKey || (kind !== 'sync' && kind !== 'bootstrap' && kind !== 'reset')) {
      return Buffer.from(JSON.stringify(frame));
    }
    let payload = sharedFrames[kind].get(shareKey);
    if (!payload) {
      payload = Buffer.from(JSON.stringify(frame));
      sharedFrames[kind].set(shareKey, payload);
    }
    return payload;
  };

  /**
   * Writes one frame to one socket; false when the socket is gone or was closed as too slow.
   * Never throws (subscriptions call it from promise chains): a frame that cannot be serialised
   * closes this socket with 1011, since its stream would otherwise have a hole.
   */
  const sendFrame = (ws: WebSocket<UserData>, frame: ServerFrame, shareKey?: object): boolean => {
    if (!connections.has(ws)) return false;
    try {
      return writeFrame(ws, frame, shareKey);
    } catch (err) {
      handlerFailed('serialise', err, ws, true);
      return false;
    }
  };

  const writeFrame = (ws: WebSocket<UserData>, frame: ServerFrame, shareKey?: object): boolean => {
    const payload = serialise(frame, shareKey);
    // Every frame sent here but pong/error/subscribed is catch-up (live events go through fanOut).
    if (frame.type === 'bootstrap' || frame.type === 'sync') ws.getUserData().catchUpBytes += payload.length;
    const status = ws.send(payload, false, false);
    metrics.framesSent.inc({ type: frame.type });
    metrics.bytesSent.inc(payload.length);
    if (frame.type === 'sync') metrics.eventsDelivered.inc(frame.events.length);
    if (status === SEND_STATUS.dropped) {
      closeDroppedSocket(ws);
      return false;
    }
    closeSlowConsumer(ws);
    return connections.has(ws);
  };

  const sendError = (ws: WebSocket<UserData>, code: WsErrorCode, message: string, scope?: string) => {
    metrics.frameErrors.inc({ code });
    sendFrame(ws, { type: 'error', code, message, ...(scope === undefined ? {} : { scope }) });
  };

  /**
   * Fan-out of one ordered batch: serialised once, published once on the scope's topic (uWS
   * writes it to every subscribed socket in C++), then the live sockets' send buffers are
   * checked so a client that stopped reading is closed (1013) instead of growing without bound.
   */
  const fanOut = (stream: ScopeStream, events: readonly SyncEvent[]) => {
    const live = liveSockets.get(stream.scope);
    if (!live || live.size === 0) return;
    const last = events[events.length - 1]!;
    let payload: Buffer;
    try {
      payload = Buffer.from(
        JSON.stringify({ type: 'sync', scope: stream.scope, events, latestSyncId: last.id }),
      );
    } catch (err) {
      // Not deliverable live: every live socket of the scope would miss it, so each one is
      // closed (1011) and resumes from its cursor through the log.
      for (const ws of [...live]) handlerFailed('fanout', err, ws, true);
      return;
    }
    app.publish(topicOf(stream.scope), payload, false, false);
    const n = live.size;
    metrics.framesSent.inc({ type: 'sync' }, n);
    metrics.bytesSent.inc(payload.length * n);
    metrics.eventsDelivered.inc(events.length * n);
    const now = Date.now();
    for (const e of events) {
      const committed = Date.parse(e.created_at);
      if (Number.isFinite(committed)) metrics.fanoutLatency.observe(Math.max(0, now - committed) / 1000);
    }
    for (const ws of live) closeSlowConsumer(ws);
  };

  const expiries = new ExpiryWheel<WebSocket<UserData>>((ws) => {
    if (!connections.has(ws)) return;
    try {
      const ud = ws.getUserData();
      log.info({ conn: ud.id }, 'token expired; closing');
      ws.end(CLOSE_CODES.policyViolation, 'token expired');
    } catch (err) {
      handlerFailed('expiry', err, ws, true);
    }
  });

  const streams = new ScopeRegistry({ bus, reads, metrics, log, holdMs: config.REORDER_HOLD_MS, fanOut });
  const subscriptionDeps = { streams, reads, metrics, log };

  // A paged bootstrap sends its next page once the send buffer is back under half the
  // slow-consumer limit: pages never pile up, so a scope of any size is subscribable.
  const pageResumeBytes = Math.floor(config.MAX_BACKPRESSURE_BYTES / 2);
  const wakeWriters = (ud: UserData) => {
    const waiters = ud.writableWaiters;
    ud.writableWaiters = [];
    for (const wake of waiters) wake();
  };

  const channelFor = (ws: WebSocket<UserData>, ud: UserData): SubscriberChannel => ({
    send: (frame, shareKey) => sendFrame(ws, frame, shareKey),
    writable: () =>
      new Promise<void>((resolve) => {
        if (ud.closed || ws.getBufferedAmount() <= pageResumeBytes) resolve();
        else ud.writableWaiters.push(resolve);
      }),
    joinTopic(scope) {
      if (ud.closed) return;
      ws.subscribe(topicOf(scope));
      let set = liveSockets.get(scope);
      if (!set) {
        set = new Set();
        liveSockets.set(scope, set);
      }
      set.add(ws);
    },
    leaveTopic(scope) {
      const set = liveSockets.get(scope);
      if (set?.delete(ws) && set.size === 0) liveSockets.delete(scope);
      if (!ud.closed) ws.unsubscribe(topicOf(scope));
    },
  });

  const subscribe = (ws: WebSocket<UserData>, ud: UserData, frame: SubscribeFrame) => {
    // Compared, keyed and streamed in canonical form, so `org:5E79…` and `org:5e79…` are one
    // subscription of one log; the frames of the subscription carry the canonical scope.
    const scope = canonicalScope(frame.scope);
    if (scope === undefined) {
      sendError(ws, 'bad_request', 'Invalid frame: scope: not a valid scope');
      return;
    }
    if (!scopeAllowed(ud.principal.scopes, scope)) {
      sendError(ws, 'forbidden', `Token does not grant scope ${scope}`, scope);
      return;
    }
    const existing = ud.subscriptions.get(scope);
    if (!existing && ud.subscriptions.size >= config.MAX_SUBSCRIPTIONS_PER_CONNECTION) {
      sendError(
        ws,
        'too_many_subscriptions',
        `At most ${config.MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection`,
        scope,
      );
      return;
    }
    // Subscribing again replaces the subscription (e.g. to resume from another cursor).
    existing?.close();
    const subscription = new Subscription(scope, ud.channel!, subscriptionDeps, () => {
      if (ud.subscriptions.get(scope) === subscription) {
        ud.subscriptions.delete(scope);
        metrics.subscriptions.dec();
      }
    });
    ud.subscriptions.set(scope, subscription);
    metrics.subscriptions.inc();
    void subscription.start(frame.lastSyncId);
  };

  /**
   * An `auth` frame: verifies the new token and, when it has the connection's `sub`, makes it the
   * connection's token in place — the expiry moves to the new `exp`, and subscriptions whose
   * scope it no longer grants are dropped with a `forbidden` error each. A token that fails
   * verification (`unauthorized`) or names another subject (`forbidden`) changes nothing.
   */
  const refreshToken = async (ws: WebSocket<UserData>, ud: UserData, frame: AuthFrame) => {
    const generation = ++ud.authGeneration;
    let principal: Principal;
    try {
      principal = await auth.verify(frame.token);
    } catch (err) {
      if (ud.closed) return;
      metrics.tokenRefreshes.inc({ result: 'unauthorized' });
      sendError(
        ws,
        'unauthorized',
        `Token refresh refused: ${toAppError(err).message}; the current token stays`,
      );
      return;
    }
    if (ud.closed || generation !== ud.authGeneration) return;
    if (principal.sub !== ud.principal.sub) {
      metrics.tokenRefreshes.inc({ result: 'other_subject' });
      sendError(ws, 'forbidden', 'Token refresh refused: the new token is for another subject');
      return;
    }
    expiries.remove(ws, ud.principal.exp * 1000);
    ud.principal = principal;
    expiries.add(ws, principal.exp * 1000);
    for (const [scope, subscription] of [...ud.subscriptions]) {
      if (scopeAllowed(principal.scopes, scope)) continue;
      subscription.close();
      sendError(ws, 'forbidden', `The refreshed token does not grant scope ${scope}; unsubscribed`, scope);
    }
    metrics.tokenRefreshes.inc({ result: 'ok' });
    log.info({ conn: ud.id, exp: principal.exp }, 'token refreshed');
    sendFrame(ws, { type: 'authed', exp: principal.exp });
  };

  const onMessage = (ws: WebSocket<UserData>, message: ArrayBuffer, isBinary: boolean) => {
    try {
      handleMessage(ws, message, isBinary);
    } catch (err) {
      handlerFailed('message', err, ws);
    }
  };

  const handleMessage = (ws: WebSocket<UserData>, message: ArrayBuffer, isBinary: boolean) => {
    const ud = ws.getUserData();
    if (message.byteLength > config.MAX_FRAME_BYTES) {
      metrics.framesReceived.inc({ type: 'oversized' });
      ws.end(CLOSE_CODES.messageTooBig, `frame exceeds ${config.MAX_FRAME_BYTES} bytes`);
      return;
    }
    switch (takeToken(ud.bucket, rateLimits, Date.now())) {
      case 'ok':
        break;
      case 'refuse':
        metrics.framesReceived.inc({ type: 'refused' });
        sendError(ws, 'rate_limited', `More than ${config.FRAME_RATE_PER_SECOND} frames per second`);
        return;
      case 'close':
        metrics.framesReceived.inc({ type: 'refused' });
        metrics.frameErrors.inc({ code: 'rate_limited' });
        log.info({ conn: ud.id }, 'closing a client that kept flooding');
        ws.end(CLOSE_CODES.policyViolation, 'rate limit exceeded');
        return;
    }
    if (isBinary) {
      metrics.framesReceived.inc({ type: 'invalid' });
      sendError(ws, 'bad_request', 'Binary frames are not supported; send JSON text frames');
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(message).toString('utf8'));
    } catch {
      metrics.framesReceived.inc({ type: 'invalid' });
      sendError(ws, 'bad_request', 'Frame is not valid JSON');
      return;
    }
    const parsed = ClientFrame.safeParse(raw);
    if (!parsed.success) {
      metrics.framesReceived.inc({ type: 'invalid' });
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.').slice(0, 64)}: ` : '';
      sendError(
        ws,
        'bad_request',
        `Invalid frame: ${where}${(issue?.message ?? 'unknown shape').slice(0, 200)}`,
      );
      return;
    }
    const frame = parsed.data;
    metrics.framesReceived.inc({ type: frame.type });
    switch (frame.type) {
      case 'subscribe':
        subscribe(ws, ud, frame);
        return;
      case 'unsubscribe': {
        const scope = canonicalScope(frame.scope);
        if (scope !== undefined) ud.subscriptions.get(scope)?.close();
        return;
      }
      case 'ping':
        // `t` is a finite number or a string of at most 64 characters (the schema): bounded.
        sendFrame(ws, frame.t === undefined ? { type: 'pong' } : { type: 'pong', t: frame.t });
        return;
      case 'auth':
        refreshToken(ws, ud, frame).catch((err) => handlerFailed('message', err, ws));
        return;
      default:
        unreachable(frame);
    }
  };

  const ops = createOpsRoutes({
    registry: deps.registry,
    isDraining: () => draining,
    // Redis and the delta service are shared by every gateway: reported, never a reason for 503
    // (contract §8), since a gateway without them still serves its clients through head checks.
    readiness: async () => ({
      ...(bus.kind === 'memory' ? { bus: bus.isHealthy() } : {}),
      ...(deps.readiness ? await deps.readiness() : {}),
    }),
    dependencies: async () => ({
      ...(bus.kind === 'redis' ? { redis: bus.isHealthy() } : {}),
      delta: streams.deltaReachable,
    }),
  });
  /** True when the request's Host is not served here; it has then been answered with 403. */
  const refuseHost = (res: HttpResponse, req: HttpRequest): boolean => {
    if (!deps.acceptsHost) return false;
    const host = req.getHeader('host');
    if (deps.acceptsHost(host)) return false;
    writeJson(res, 403, {
      error: { code: 'forbidden', message: `Host ${JSON.stringify(host.slice(0, 100))} is not served here` },
    });
    return true;
  };
  const bridgeOptions: BridgeOptions = {
    maxBodyBytes: deps.httpBodyLimitBytes ?? 1024 * 1024,
    log,
    // A body is read only once its bearer token verifies (docs/protocol.md, "HTTP bridge").
    authenticate: (token) =>
      auth.verify(token).then(
        () => true,
        () => false,
      ),
    onError: (err) => handlerFailed('http', err),
  };

  const refusedUpgrade: Record<IpRefusal, string> = {
    upgrade_rate: 'Too many connection attempts from this address; retry later',
    failed_auth_rate: 'Too many failed authentications from this address; retry later',
    ip_connections: `At most ${config.MAX_CONNECTIONS_PER_IP} connections per address`,
  };

  /**
   * The `/sync` upgrade. Cheap checks first — draining, the per-IP upgrade and failed-auth rates
   * and the IP's connection count, all map lookups — so a flood is refused (429) before any token
   * is verified; then the token (401), then the subject's connection count (429).
   */
  const upgrade = (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
    if (refuseHost(res, req)) return;
    const key = req.getHeader('sec-websocket-key');
    const protocol = req.getHeader('sec-websocket-protocol');
    const extensions = req.getHeader('sec-websocket-extensions');
    const token = req.getQuery('token') || bearerToken(req.getHeader('authorization'));
    const ip = clientAddress(
      res.getRemoteAddressAsText(),
      config.TRUST_PROXY_HEADER ? req.getHeader(config.TRUST_PROXY_HEADER) : undefined,
    );
    if (draining) {
      metrics.upgrades.inc({ result: 'draining' });
      writeJson(res, 503, {
        error: { code: 'unavailable', message: 'Node is draining; reconnect elsewhere' },
      });
      return;
    }
    const refusal = limits.admitIp(ip, Date.now());
    if (refusal) {
      metrics.upgrades.inc({ result: refusal });
      writeJson(
        res,
        429,
        { error: { code: 'rate_limited', message: refusedUpgrade[refusal] } },
        { 'retry-after': '1' },
      );
      return;
    }
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    // Released unless the socket opens (then the close handler releases it).
    let ipHeld = true;
    const releaseIp = () => {
      if (ipHeld) limits.releaseIp(ip);
      ipHeld = false;
    };
    auth
      .verify(token)
      .then(
        (principal) => {
          if (aborted) {
            releaseIp();
            metrics.upgrades.inc({ result: 'aborted' });
            return;
          }
          if (draining) {
            releaseIp();
            metrics.upgrades.inc({ result: 'draining' });
            writeJson(res, 503, { error: { code: 'unavailable', message: 'Node is draining' } });
            return;
          }
          if (!limits.admitSubject(principal.sub)) {
            releaseIp();
            metrics.upgrades.inc({ result: 'subject_connections' });
            writeJson(
              res,
              429,
              {
                error: {
                  code: 'rate_limited',
                  message: `At most ${config.MAX_CONNECTIONS_PER_SUBJECT} connections per subject`,
                },
              },
              { 'retry-after': '1' },
            );
            return;
          }
          metrics.upgrades.inc({ result: 'accepted' });
          const userData: UserData = {
            id: nextConnectionId++,
            principal,
            ip,
            authGeneration: 0,
            subscriptions: new Map(),
            bucket: newTokenBucket(config.FRAME_BURST, Date.now()),
            catchUpBytes: 0,
            closed: false,
            openedAt: Date.now(),
            writableWaiters: [],
            channel: undefined,
          };
          ipHeld = false;
          try {
            res.cork(() => res.upgrade(userData, key, protocol, extensions, context));
          } catch (err) {
            limits.releaseIp(ip);
            limits.releaseSubject(principal.sub);
            throw err;
          }
        },
        (err) => {
          releaseIp();
          limits.failedAuth(ip, Date.now());
          if (aborted) return;
          metrics.upgrades.inc({ result: 'unauthorized' });
          writeJson(res, 401, toAppError(err).toBody());
        },
      )
      // Writing to a response that went away in between throws; never let that become an
      // unhandled rejection (which would end the process).
      .catch((err) => {
        releaseIp();
        log.warn({ err: (err as Error).message }, 'upgrade failed');
      });
  };

  app.ws<UserData>('/sync', {
    // uWS drops a connection whose frame exceeds maxPayloadLength without a close frame (the
    // client sees 1006). So uWS gets a higher hard cap and the message handler closes anything
    // over MAX_FRAME_BYTES with a proper 1009; only a frame beyond the hard cap is cut abruptly.
    maxPayloadLength: frameHardCap(config.MAX_FRAME_BYTES),
    idleTimeout: config.IDLE_TIMEOUT_SECONDS,
    sendPingsAutomatically: true,
    // Our own check (closeSlowConsumer) closes a slow client with 1013 at MAX_BACKPRESSURE_BYTES
    // plus its catch-up allowance. uWS's limit is a last resort far above it: past it uWS would
    // drop messages, and closing the socket is then the only safe answer (a dropped message must
    // never be followed by a later one).
    maxBackpressure: Math.max(64 * 1024 * 1024, config.MAX_BACKPRESSURE_BYTES * 8),
    closeOnBackpressureLimit: 1,
    drain(ws) {
      try {
        // The client is reading again: once its buffer is back under the limit, a past catch-up
        // no longer earns it extra room.
        const ud = ws.getUserData();
        if (ws.getBufferedAmount() <= config.MAX_BACKPRESSURE_BYTES) ud.catchUpBytes = 0;
        if (ud.writableWaiters.length > 0 && ws.getBufferedAmount() <= pageResumeBytes) wakeWriters(ud);
      } catch (err) {
        handlerFailed('drain', err, ws, true);
      }
    },
    upgrade(res, req, context) {
      try {
        upgrade(res, req, context);
      } catch (err) {
        handlerFailed('upgrade', err);
        try {
          writeJson(res, 500, { error: { code: 'internal', message: 'Internal error' } });
        } catch {}
      }
    },
    open(ws) {
      try {
        const ud = ws.getUserData();
        ud.channel = channelFor(ws, ud);
        connections.add(ws);
        metrics.connections.set(connections.size);
        // Closed with 1008 when the token expires (one shared timer for all connections).
        expiries.add(ws, ud.principal.exp * 1000);
        log.info({ conn: ud.id, sub: ud.principal.sub }, 'connection opened');
      } catch (err) {
        handlerFailed('open', err, ws, true);
      }
    },
    message: onMessage,
    close(ws, code) {
      try {
        const ud = ws.getUserData();
        ud.closed = true;
        expiries.remove(ws, ud.principal.exp * 1000);
        connections.delete(ws);
        limits.releaseIp(ud.ip);
        limits.releaseSubject(ud.principal.sub);
        metrics.connections.set(connections.size);
        for (const subscription of [...ud.subscriptions.values()]) subscription.close();
        wakeWriters(ud);
        metrics.disconnects.inc({ code: closeCodeLabel(code) });
        metrics.connectionDuration.observe((Date.now() - ud.openedAt) / 1000);
        log.info({ conn: ud.id, code }, 'connection closed');
      } catch (err) {
        connections.delete(ws);
        handlerFailed('close', err);
      }
    },
  });

  app.any('/*', (res, req) => {
    if (refuseHost(res, req)) return;
    const url = req.getUrl();
    if (url === '/healthz' || url === '/readyz' || url === '/metrics') {
      bridgeHttp(res, req, ops.fetch, bridgeOptions);
    } else if (url === '/sync') {
      writeJson(res, 426, { error: { code: 'bad_request', message: 'GET /sync is a WebSocket endpoint' } });
    } else if (deps.http) {
      bridgeHttp(res, req, deps.http, bridgeOptions);
    } else {
      writeJson(res, 404, { error: { code: 'not_found', message: 'Not found' } });
    }
  });

  const unsubscribeStatus = bus.onStatus((status) => {
    try {
      busStatusChanged(status);
    } catch (err) {
      handlerFailed('bus', err);
    }
  });
  function busStatusChanged(status: 'up' | 'down') {
    if (status === 'down') {
      metrics.busUp.set(0);
      log.warn('bus down: live events paused; not ready');
      return;
    }
    metrics.busUp.set(1);
    metrics.busReconnects.inc();
    log.info({ scopes: streams.size }, 'bus back: filling every active scope from the log');
    streams.fillAll();
  }

  return {
    app,
    metrics,
    get port() {
      return port;
    },
    get draining() {
      return draining;
    },
    get connectionCount() {
      return connections.size;
    },
    listen(requested = config.PORT, host?: string) {
      return new Promise((resolve, reject) => {
        const onListen = (socket: us_listen_socket | false) => {
          if (!socket) {
            reject(new Error(`gateway could not listen on port ${requested}`));
            return;
          }
          listenSocket = socket;
          port = uWS.us_socket_local_port(socket as never);
          metrics.busUp.set(bus.isHealthy() ? 1 : 0);
          const tick = () => {
            metrics.busUp.set(bus.isHealthy() ? 1 : 0);
            void streams.checkHeads();
          };
          tick();
          headTimer = setInterval(tick, config.HEAD_CHECK_INTERVAL_MS);
          log.info({ port, host }, 'gateway listening');
          resolve(port);
        };
        if (host === undefined) app.listen(requested, onListen);
        else app.listen(host, requested, onListen);
      });
    },
    async drain() {
      if (draining) return;
      draining = true;
      const sockets = [...connections];
      for (let i = sockets.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [sockets[i], sockets[j]] = [sockets[j]!, sockets[i]!];
      }
      log.info({ connections: sockets.length, windowMs: config.DRAIN_WINDOW_MS }, 'draining');
      if (sockets.length === 0) return;
      const started = Date.now();
      const window = config.DRAIN_WINDOW_MS;
      const tick = Math.max(10, Math.min(250, window / sockets.length));
      await new Promise<void>((resolve) => {
        let closed = 0;
        const closeDue = () => {
          // Socket i is due at i * window / n: evenly spread, the last one at the window's end.
          const elapsed = Date.now() - started;
          const due = Math.min(sockets.length, Math.floor((elapsed / window) * sockets.length) + 1);
          for (; closed < due; closed++) {
            const ws = sockets[closed]!;
            try {
              if (connections.has(ws))
                ws.end(CLOSE_CODES.serviceRestart, 'node draining; reconnect elsewhere');
            } catch (err) {
              handlerFailed('drain', err);
            }
          }
          if (closed >= sockets.length) {
            clearInterval(timer);
            resolve();
          }
        };
        const timer = setInterval(closeDue, tick);
        closeDue();
      });
    },
    async stop() {
      clearInterval(headTimer);
      expiries.stop();
      unsubscribeStatus();
      if (listenSocket) {
        uWS.us_listen_socket_close(listenSocket);
        listenSocket = undefined;
      }
      for (const ws of [...connections]) {
        if (connections.has(ws)) ws.end(CLOSE_CODES.goingAway, 'server stopping');
      }
      streams.closeAll();
    },
  };
}
