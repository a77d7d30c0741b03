/** The live stream: uWebSockets.js gateway with gap-free subscribe and per-scope ordered fan-out. */
export {
  type GatewayConfig,
  GatewayEnv,
  gatewayDefaults,
  loadGatewayConfig,
  WS_COMPRESSION_MODES,
  type WsCompression,
} from './config';
export { createGateway, type Gateway, type GatewayDeps, type UserData } from './gateway';
export { bridgeHttp, type FetchHandler } from './http-bridge';
export { createHttpDeltaSource, type HttpDeltaSourceOptions } from './http-delta-source';
export { createGatewayMetrics, type GatewayMetrics } from './metrics';
export { createGatewayService, type GatewayService, type GatewayServiceDeps } from './service';
export { assertNativeUws, detectUwsImplementation } from './uws';
