import { type Auth, bearerToken, type Logger, type Principal, toAppError } from '@openagents/sync-server-kit';
import type { GatewayConfig } from './config';
import { type ConnectionLimits, clientAddress, type IpRefusal } from './connection-limits';
import type { UserData } from './connection-registry';
import { writeJson } from './http-bridge';
import type { GatewayMetrics } from './metrics';
import type { HttpRequest, HttpResponse, us_socket_context_t } from './uws';

type UpgradeConfig = Pick<
  GatewayConfig,
  'TRUST_PROXY_HEADER' | 'MAX_CONNECTIONS_PER_IP' | 'MAX_CONNECTIONS_PER_SUBJECT' | 'FRAME_BURST'
>;

export interface UpgradeDeps {
  config: UpgradeConfig;
  auth: Auth;
  limits: ConnectionLimits;
  metrics: GatewayMetrics;
  log: Logger;
  isDraining: () => boolean;
  newConnectionId: () => number;
  acceptsHost: ((host: string) => boolean) | undefined;
}

/** A Connection header that lists the "upgrade" token (it is a comma-separated list). */
const CONNECTION_UPGRADE = /(?:^|,)\s*upgrade\s*(?:,|$)/i;

/** What the upgrade reads from the request: uWS's request object is gone after the handler returns. */
interface UpgradeRequest {
  key: string;
  protocol: string;
  extensions: string;
  ip: string;
  context: us_socket_context_t;
}

/** True when the request's Host is not served here; it has then been answered with 403. */
export function refuseHost(
  acceptsHost: ((host: string) => boolean) | undefined,
  res: HttpResponse,
  req: HttpRequest,
): boolean {
  if (!acceptsHost) return false;
  const host = req.getHeader('host');
  if (acceptsHost(host)) return false;
  writeJson(res, 403, {
    error: { code: 'forbidden', message: `Host ${JSON.stringify(host.slice(0, 100))} is not served here` },
  });
  return true;
}

/**
 * The `/sync` upgrade. Cheap checks first — draining, the per-IP upgrade and failed-auth rates
 * and the IP's connection count, all map lookups — so a flood is refused (429) before any token
 * is verified; then the token (401), then the subject's connection count (429).
 */
export function createUpgradeHandler(
  deps: UpgradeDeps,
): (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => void {
  const { config, metrics, limits } = deps;
  const refusedUpgrade: Record<IpRefusal, string> = {
    upgrade_rate: 'Too many connection attempts from this address; retry later',
    failed_auth_rate: 'Too many failed authentications from this address; retry later',
    ip_connections: `At most ${config.MAX_CONNECTIONS_PER_IP} connections per address`,
  };
  return (res, req, context) => {
    if (refuseHost(deps.acceptsHost, res, req)) return;
    // RFC 6455 §4.2.1: the handshake's Connection header includes "Upgrade". uWS upgrades without
    // it; and with "close" this build's cork wrapper can close the socket right after an
    // asynchronous upgrade (uNetworking/uWebSockets#1928, fixed upstream by #1929: a plain uWS
    // server upgrading on a later tick inside res.cork dropped 300 of 300 such handshakes after
    // their 101). Refused here with a 400 that says why.
    if (!CONNECTION_UPGRADE.test(req.getHeader('connection'))) {
      metrics.upgrades.inc({ result: 'bad_request' });
      writeJson(res, 400, {
        error: {
          code: 'bad_request',
          message: 'A WebSocket handshake needs "Connection: Upgrade" (RFC 6455)',
        },
      });
      return;
    }
    const request: UpgradeRequest = {
      key: req.getHeader('sec-websocket-key'),
      protocol: req.getHeader('sec-websocket-protocol'),
      extensions: req.getHeader('sec-websocket-extensions'),
      ip: clientAddress(
        res.getRemoteAddressAsText(),
        config.TRUST_PROXY_HEADER ? req.getHeader(config.TRUST_PROXY_HEADER) : undefined,
      ),
      context,
    };
    const token = req.getQuery('token') || bearerToken(req.getHeader('authorization'));
    if (deps.isDraining()) {
      metrics.upgrades.inc({ result: 'draining' });
      writeJson(res, 503, {
        error: { code: 'unavailable', message: 'Node is draining; reconnect elsewhere' },
      });
      return;
    }
    const refusal = limits.admitIp(request.ip, Date.now());
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
    verifyAndUpgrade(deps, res, request, token);
  };
}

/** The asynchronous half: the token, then the subject's limit, then the upgrade itself. */
function verifyAndUpgrade(
  deps: UpgradeDeps,
  res: HttpResponse,
  request: UpgradeRequest,
  token: string | undefined,
) {
  const { limits, metrics } = deps;
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  // Released unless the socket opens (then the close handler releases it).
  let ipHeld = true;
  const releaseIp = () => {
    if (ipHeld) limits.releaseIp(request.ip);
    ipHeld = false;
  };
  deps.auth
    .verify(token)
    .then(
      (principal) => {
        if (aborted) {
          releaseIp();
          metrics.upgrades.inc({ result: 'aborted' });
          return;
        }
        if (!admitSubject(deps, res, principal)) {
          releaseIp();
          return;
        }
        metrics.upgrades.inc({ result: 'accepted' });
        ipHeld = false;
        upgradeSocket(deps, res, request, principal);
      },
      (err) => {
        releaseIp();
        limits.failedAuth(request.ip, Date.now());
        if (aborted) return;
        metrics.upgrades.inc({ result: 'unauthorized' });
        writeJson(res, 401, toAppError(err).toBody());
      },
    )
    // Writing to a response that went away in between throws; never let that become an
    // unhandled rejection (which would end the process).
    .catch((err) => {
      releaseIp();
      deps.log.warn({ err: (err as Error).message }, 'upgrade failed');
    });
}

/** False when the node started draining or the subject is at its limit (answered 503/429). */
function admitSubject(deps: UpgradeDeps, res: HttpResponse, principal: Principal): boolean {
  const { metrics } = deps;
  if (deps.isDraining()) {
    metrics.upgrades.inc({ result: 'draining' });
    writeJson(res, 503, { error: { code: 'unavailable', message: 'Node is draining' } });
    return false;
  }
  if (!deps.limits.admitSubject(principal.sub)) {
    metrics.upgrades.inc({ result: 'subject_connections' });
    writeJson(
      res,
      429,
      {
        error: {
          code: 'rate_limited',
          message: `At most ${deps.config.MAX_CONNECTIONS_PER_SUBJECT} connections per subject`,
        },
      },
      { 'retry-after': '1' },
    );
    return false;
  }
  return true;
}

function upgradeSocket(deps: UpgradeDeps, res: HttpResponse, request: UpgradeRequest, principal: Principal) {
  const now = Date.now();
  const userData: UserData = {
    id: deps.newConnectionId(),
    principal,
    ip: request.ip,
    authGeneration: 0,
    subscriptions: [],
    tokens: deps.config.FRAME_BURST,
    updatedAt: now,
    refusedInARow: 0,
    catchUpBytes: 0,
    closed: false,
    openedAt: now,
    writableWaiters: undefined,
    channel: undefined,
  };
  try {
    res.cork(() => res.upgrade(userData, request.key, request.protocol, request.extensions, request.context));
  } catch (err) {
    deps.limits.releaseIp(request.ip);
    deps.limits.releaseSubject(principal.sub);
    throw err;
  }
}
