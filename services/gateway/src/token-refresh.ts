import { type AuthFrame, scopeAllowed } from '@openagents/sync-protocol';
import { type Auth, type Logger, type Principal, toAppError } from '@openagents/sync-server-kit';
import type { Socket, UserData } from './connection-registry';
import type { ExpiryWheel } from './expiry-wheel';
import type { FrameWriter } from './frame-writer';
import type { GatewayMetrics } from './metrics';

export interface TokenRefreshDeps {
  auth: Auth;
  metrics: GatewayMetrics;
  log: Logger;
  writer: FrameWriter;
  /** Token expiries of the open connections (closed with 1008 when due). */
  expiries: ExpiryWheel<Socket>;
}

/**
 * An `auth` frame: verifies the new token and, when it has the connection's `sub`, makes it the
 * connection's token in place — the expiry moves to the new `exp`, and subscriptions whose
 * scope it no longer grants are dropped with a `forbidden` error each. A token that fails
 * verification (`unauthorized`) or names another subject (`forbidden`) changes nothing.
 */
export async function refreshToken(
  deps: TokenRefreshDeps,
  ws: Socket,
  ud: UserData,
  frame: AuthFrame,
): Promise<void> {
  const { metrics, writer } = deps;
  const generation = ++ud.authGeneration;
  let principal: Principal;
  try {
    principal = await deps.auth.verify(frame.token);
  } catch (err) {
    if (ud.closed) return;
    metrics.tokenRefreshes.inc({ result: 'unauthorized' });
    writer.sendError(
      ws,
      'unauthorized',
      `Token refresh refused: ${toAppError(err).message}; the current token stays`,
    );
    return;
  }
  if (ud.closed || generation !== ud.authGeneration) return;
  if (principal.sub !== ud.principal.sub) {
    metrics.tokenRefreshes.inc({ result: 'other_subject' });
    writer.sendError(ws, 'forbidden', 'Token refresh refused: the new token is for another subject');
    return;
  }
  deps.expiries.remove(ws, ud.principal.exp * 1000);
  ud.principal = principal;
  deps.expiries.add(ws, principal.exp * 1000);
  for (const [scope, subscription] of [...ud.subscriptions]) {
    if (scopeAllowed(principal.scopes, scope)) continue;
    subscription.close();
    writer.sendError(
      ws,
      'forbidden',
      `The refreshed token does not grant scope ${scope}; unsubscribed`,
      scope,
    );
  }
  metrics.tokenRefreshes.inc({ result: 'ok' });
  deps.log.info({ conn: ud.id, exp: principal.exp }, 'token refreshed');
  writer.send(ws, { type: 'authed', exp: principal.exp });
}
