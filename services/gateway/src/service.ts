import {
  type Auth,
  authOptionsFromEnv,
  type Bus,
  createAuth,
  createRedisBus,
  createRegistry,
  type DeltaSource,
  type Logger,
  type Registry,
  type Service,
  serviceTokenSource,
} from '@openagents/sync-server-kit';
import type { GatewayConfig } from './config';
import { createGateway, type Gateway } from './gateway';
import { createHttpDeltaSource } from './http-delta-source';
import { assertNativeUws } from './uws';

/** How long the gateway's own service token lives; it is re-signed well before it expires. */
const SERVICE_TOKEN_TTL_SECONDS = 3600;

/**
 * The gateway as a deployable service: a Redis bus, the delta service over HTTP (with a service
 * token the gateway signs itself: `use: service`, scopes ['*']), a metrics registry, and the gateway on
 * `config.PORT`. Refuses to start on the pure-JS uWS fallback.
 */
export function createGatewayService(options: {
  config: GatewayConfig;
  log: Logger;
  bus?: Bus;
  delta?: DeltaSource;
  registry?: Registry;
}): Service & { gateway: Gateway } {
  assertNativeUws();
  const { config, log } = options;
  const auth: Auth = createAuth(authOptionsFromEnv(config));
  const bus =
    options.bus ??
    createRedisBus({
      url: config.REDIS_URL,
      cluster: config.REDIS_CLUSTER,
      channelPrefix: config.REDIS_CHANNEL_PREFIX,
      log,
    });
  // A service token (`use: service`): the delta service accepts it, client endpoints do not.
  const serviceToken = serviceTokenSource(auth, 'service:gateway', {
    ttlSeconds: Math.min(
      SERVICE_TOKEN_TTL_SECONDS,
      config.SYNC_JWT_MAX_TTL_SECONDS ?? Number.POSITIVE_INFINITY,
    ),
  });
  const delta = options.delta ?? createHttpDeltaSource({ baseUrl: config.DELTA_URL, token: serviceToken });
  const registry = options.registry ?? createRegistry('gateway');
  const gateway = createGateway({ config, auth, bus, delta, log, registry });
  return {
    gateway,
    async start() {
      await gateway.listen(config.PORT);
    },
    drain: () => gateway.drain(),
    async stop() {
      await gateway.stop();
      await bus.close();
    },
  };
}
