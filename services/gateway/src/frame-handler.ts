import {
  CLOSE_CODES,
  ClientFrame,
  canonicalScope,
  type SubscribeFrame,
  scopeAllowed,
  unreachable,
} from '@openagents/sync-protocol';
import type { GatewayConfig } from './config';
import type { Socket, UserData } from './connection-registry';
import type { HandlerFailed } from './handler-failure';
import { Subscription, type SubscriptionDeps } from './subscription';
import { takeToken } from './token-bucket';
import { refreshToken, type TokenRefreshDeps } from './token-refresh';

type FrameConfig = Pick<
  GatewayConfig,
  'MAX_FRAME_BYTES' | 'FRAME_RATE_PER_SECOND' | 'FRAME_BURST' | 'MAX_SUBSCRIPTIONS_PER_CONNECTION'
>;

export interface FrameHandlerDeps extends TokenRefreshDeps {
  config: FrameConfig;
  subscriptions: SubscriptionDeps;
  failed: HandlerFailed;
}

/**
 * uWS's `message` handler of `/sync`: admits a client frame (size, rate, text), parses it
 * against the protocol's schema and routes it. Bad input gets an `error` frame (or a close, for
 * an oversized frame or a client that keeps flooding), never a throw.
 */
export function createFrameHandler(
  deps: FrameHandlerDeps,
): (ws: Socket, message: ArrayBuffer, isBinary: boolean) => void {
  const rateLimits = {
    ratePerSecond: deps.config.FRAME_RATE_PER_SECOND,
    burst: deps.config.FRAME_BURST,
    closeAfter: deps.config.FRAME_BURST,
  };
  return (ws, message, isBinary) => {
    try {
      const ud = ws.getUserData();
      if (!admitFrame(deps, rateLimits, ws, ud, message, isBinary)) return;
      const frame = parseFrame(deps, ws, message);
      if (frame) routeFrame(deps, ws, ud, frame);
    } catch (err) {
      deps.failed('message', err, ws);
    }
  };
}

/** Size, rate and frame type, cheapest first; false when the frame was answered (or closed). */
function admitFrame(
  deps: FrameHandlerDeps,
  rateLimits: { ratePerSecond: number; burst: number; closeAfter: number },
  ws: Socket,
  ud: UserData,
  message: ArrayBuffer,
  isBinary: boolean,
): boolean {
  const { config, metrics, writer } = deps;
  if (message.byteLength > config.MAX_FRAME_BYTES) {
    metrics.framesReceived.inc({ type: 'oversized' });
    ws.end(CLOSE_CODES.messageTooBig, `frame exceeds ${config.MAX_FRAME_BYTES} bytes`);
    return false;
  }
  switch (takeToken(ud, rateLimits, Date.now())) {
    case 'ok':
      break;
    case 'refuse':
      metrics.framesReceived.inc({ type: 'refused' });
      writer.sendError(ws, 'rate_limited', `More than ${config.FRAME_RATE_PER_SECOND} frames per second`);
      return false;
    case 'close':
      metrics.framesReceived.inc({ type: 'refused' });
      metrics.frameErrors.inc({ code: 'rate_limited' });
      deps.log.info({ conn: ud.id }, 'closing a client that kept flooding');
      ws.end(CLOSE_CODES.policyViolation, 'rate limit exceeded');
      return false;
  }
  if (isBinary) {
    metrics.framesReceived.inc({ type: 'invalid' });
    writer.sendError(ws, 'bad_request', 'Binary frames are not supported; send JSON text frames');
    return false;
  }
  return true;
}

/** The frame, or undefined when it is not JSON or not a client frame (answered `bad_request`). */
function parseFrame(deps: FrameHandlerDeps, ws: Socket, message: ArrayBuffer): ClientFrame | undefined {
  const { metrics, writer } = deps;
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(message).toString('utf8'));
  } catch {
    metrics.framesReceived.inc({ type: 'invalid' });
    writer.sendError(ws, 'bad_request', 'Frame is not valid JSON');
    return undefined;
  }
  const parsed = ClientFrame.safeParse(raw);
  if (!parsed.success) {
    metrics.framesReceived.inc({ type: 'invalid' });
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.').slice(0, 64)}: ` : '';
    writer.sendError(
      ws,
      'bad_request',
      `Invalid frame: ${where}${(issue?.message ?? 'unknown shape').slice(0, 200)}`,
    );
    return undefined;
  }
  metrics.framesReceived.inc({ type: parsed.data.type });
  return parsed.data;
}

function routeFrame(deps: FrameHandlerDeps, ws: Socket, ud: UserData, frame: ClientFrame): void {
  switch (frame.type) {
    case 'subscribe':
      subscribe(deps, ws, ud, frame);
      return;
    case 'unsubscribe': {
      const scope = canonicalScope(frame.scope);
      if (scope !== undefined) ud.subscriptions.get(scope)?.close();
      return;
    }
    case 'ping':
      // `t` is a finite number or a string of at most 64 characters (the schema): bounded.
      deps.writer.send(ws, frame.t === undefined ? { type: 'pong' } : { type: 'pong', t: frame.t });
      return;
    case 'auth':
      refreshToken(deps, ws, ud, frame).catch((err) => deps.failed('message', err, ws));
      return;
    default:
      unreachable(frame);
  }
}

/** Checks the scope against the token and the connection's limit, then starts the subscription. */
function subscribe(deps: FrameHandlerDeps, ws: Socket, ud: UserData, frame: SubscribeFrame): void {
  const { config, metrics, writer } = deps;
  // Compared, keyed and streamed in canonical form, so `org:5E79…` and `org:5e79…` are one
  // subscription of one log; the frames of the subscription carry the canonical scope.
  const scope = canonicalScope(frame.scope);
  if (scope === undefined) {
    writer.sendError(ws, 'bad_request', 'Invalid frame: scope: not a valid scope');
    return;
  }
  if (!scopeAllowed(ud.principal.scopes, scope)) {
    writer.sendError(ws, 'forbidden', `Token does not grant scope ${scope}`, scope);
    return;
  }
  const existing = ud.subscriptions.get(scope);
  if (!existing && ud.subscriptions.size >= config.MAX_SUBSCRIPTIONS_PER_CONNECTION) {
    writer.sendError(
      ws,
      'too_many_subscriptions',
      `At most ${config.MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection`,
      scope,
    );
    return;
  }
  // Subscribing again replaces the subscription (e.g. to resume from another cursor).
  existing?.close();
  const subscription = new Subscription(scope, ud.channel!, deps.subscriptions, () => {
    if (ud.subscriptions.get(scope) === subscription) {
      ud.subscriptions.delete(scope);
      metrics.subscriptions.dec();
    }
  });
  ud.subscriptions.set(scope, subscription);
  metrics.subscriptions.inc();
  void subscription.start(frame.lastSyncId);
}
