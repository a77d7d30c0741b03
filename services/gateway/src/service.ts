import {
  type Auth,
  authOptionsFromEnv,
  createAuth,
  createServiceShell,
  type DeltaSource,
  type Logger,
  type Service,
  type SharedDeps,
  serviceTokenSource,
} from '@openagents/sync-server-kit';
import type { GatewayConfig } from './config';
import { createGateway, type Gateway, type GatewayDeps } from './gateway';
import { createHttpDeltaSource } from './http-delta-source';
import { assertNativeUws } from './uws';

/** How long the gateway's own service token lives; it is re-signed well before it expires. */
const SERVICE_TOKEN_TTL_SECONDS = 3600;

/**
 * The gateway's config and logger, and what it may share instead of building from config. With
 * a bus handed in REDIS_URL may be absent, with a delta source DELTA_URL may be.
 */
export interface GatewayServiceDeps extends SharedDeps {
  config: Omit<GatewayConfig, 'REDIS_URL' | 'DELTA_URL'> & {
    REDIS_URL?: string | undefined;
    DELTA_URL?: string | undefined;
  };
  log: Logger;
  delta?: DeltaSource;
  /** Interface to listen on (every interface when omitted). */
  host?: string;
  /** The standalone server's additions: HTTP bridged to its apps, a database check, Host check. */
  serving?: Pick<
    GatewayDeps,
    'http' | 'httpBodyLimitBytes' | 'httpStreamsBody' | 'readiness' | 'acceptsHost'
  >;
}

/** The gateway service: the lifecycle, and the gateway itself (its port, its metrics). */
export interface GatewayService extends Service {
  readonly gateway: Gateway;
}

/**
 * The gateway as a deployable service: a Redis bus, the delta service over HTTP (with a service
 * token the gateway signs itself: `use: service`, scopes ['*']), a metrics registry, and the
 * gateway on `config.PORT`, which `start` opens. Refuses to start on the pure-JS uWS fallback.
 */
export function createGatewayService(deps: GatewayServiceDeps): GatewayService {
  assertNativeUws();
  const { config, log } = deps;
  const shell = createServiceShell('gateway', deps);
  const auth = deps.auth ?? createAuth(authOptionsFromEnv(config));
  const bus = shell.bus(config);
  const delta = deps.delta ?? httpDeltaSource(config, auth);
  // createGateway reads the gateway's own settings; the URLs were used above.
  const gatewayConfig = config as GatewayConfig;
  const gateway = createGateway({
    config: gatewayConfig,
    auth,
    bus,
    delta,
    log,
    registry: shell.registry,
    ...deps.serving,
  });
  return {
    gateway,
    ...shell.lifecycle({
      async start() {
        await gateway.listen(config.PORT, deps.host);
      },
      drain: () => gateway.drain(),
      stop: () => gateway.stop(),
    }),
  };
}

/** The delta service over HTTP, with a service token (`use: service`) that client endpoints refuse. */
function httpDeltaSource(config: GatewayServiceDeps['config'], auth: Auth): DeltaSource {
  if (!config.DELTA_URL) throw new Error('DELTA_URL is required without a delta source of its own');
  const serviceToken = serviceTokenSource(auth, 'service:gateway', {
    ttlSeconds: Math.min(
      SERVICE_TOKEN_TTL_SECONDS,
      config.SYNC_JWT_MAX_TTL_SECONDS ?? Number.POSITIVE_INFINITY,
    ),
  });
  return createHttpDeltaSource({ baseUrl: config.DELTA_URL, token: serviceToken });
}
