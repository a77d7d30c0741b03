import { markdownTable } from '../../test/support/bench';

/** Fan-out figures of one target: throughput at saturation and latency at the fixed rate. */
export interface FanoutFigures {
  /** Events delivered per second over all subscribers, closed-loop publishers. */
  saturatedPerSecond: number;
  /** Events the publishers got acknowledged per second in that run (the publish path's rate). */
  publishedPerSecond: number;
  /** CPU time the fan-out tier (gateways; a peer's nodes) used during the saturation window. */
  fanoutCpuSeconds: number;
  /** Events delivered in that window per CPU-second of the fan-out tier. */
  deliveriesPerCpuSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Correctness held (no loss, no duplicates, everything delivered) in both runs. */
  correct: boolean;
}

/** Everything the bench measured; NaN where a step failed or was skipped. */
export interface BenchFigures {
  sizes: {
    saturationConnections: number;
    saturationScopes: number;
    /** Events per publish in the saturation run. */
    saturationBatch: number;
    rateConnections: number;
    rateScopes: number;
    eventsPerSecond: number;
    idleConnections: number;
    writers: number;
    stormClients: number;
    stormScopes: number;
    bootstrapRecords: number;
  };
  fanout: {
    sync: FanoutFigures;
    'uws-local'?: FanoutFigures;
    'ws-redis'?: FanoutFigures;
    'socketio-redis'?: FanoutFigures;
  };
  rssPerConnectionKiB: number;
  mutationsPerSecond: number;
  mutationP99Ms: number;
  mutationsCorrect: boolean;
  stormCatchUpMs: number;
  /** When every client had its socket back (the rest of the catch-up is replay). */
  stormReconnectedMs: number;
  /** The same clients' first connect and bootstrap, for comparison. */
  stormInitialConnectMs: number;
  /** The driver connecting as many clients to plain uWS the same way: the cold-connect floor. */
  stormFloorMs: number;
  stormCaughtUp: boolean;
  /** Delta reads the gateways sent to the delta service. */
  stormDeltaRequests: number;
  /** Of those, the ones the delta service read from Postgres (the rest were shared). */
  stormDeltaQueries: number;
  stormResumePairs: number;
  /** Distinct (gateway, scope, cursor): the floor when a scope's clients sit on several gateways. */
  stormResumePairsPerNode: number;
  bootstrapHttpP50Ms: number;
  bootstrapWsAllMs: number;
  bootstrapCorrect: boolean;
}

const TARGETS = {
  ofUws: 0.7,
  overSocketIo: 5,
  p99Ms: 25,
  rssKiB: 8,
  stormMs: 3000,
  stormClients: 5000,
};

function n(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? 'n/a' : ok ? 'met' : '**not met**';
}

function meets(value: number, ok: (v: number) => boolean): boolean | undefined {
  return Number.isFinite(value) ? ok(value) : undefined;
}

/**
 * The bench's one table: this system next to each peer, ratios, the targets and whether they
 * are met. Columns: figure | this system | uWS local | ws + Redis | Socket.IO + Redis | target | status.
 */
export function benchTable(f: BenchFigures): string {
  const sync = f.fanout.sync;
  const uws = f.fanout['uws-local'];
  const naive = f.fanout['ws-redis'];
  const sio = f.fanout['socketio-redis'];
  const s = f.sizes;
  const peerCell = (p: FanoutFigures | undefined, pick: (x: FanoutFigures) => number, digits = 0) =>
    p ? n(pick(p), digits) : 'n/a';
  const ratio = (p: FanoutFigures | undefined) =>
    p && p.saturatedPerSecond > 0 ? sync.saturatedPerSecond / p.saturatedPerSecond : Number.NaN;
  const cpuRatio = (p: FanoutFigures | undefined) =>
    p && p.deliveriesPerCpuSecond > 0 ? sync.deliveriesPerCpuSecond / p.deliveriesPerCpuSecond : Number.NaN;
  const ofUws = ratio(uws);
  const overSio = ratio(sio);
  const cpuOfUws = cpuRatio(uws);
  const cpuOverSio = cpuRatio(sio);
  const fanoutVerdict = (a: number, b: number) =>
    `${verdict(meets(a, (v) => v >= TARGETS.ofUws))}; ${verdict(meets(b, (v) => v >= TARGETS.overSocketIo))}`;
  const fanoutTarget = `≥ ${TARGETS.ofUws} of uWS; ≥ ${TARGETS.overSocketIo}× Socket.IO`;
  const stormScaled = f.stormCaughtUp ? f.stormCatchUpMs : Number.NaN;
  const rows: (string | number)[][] = [
    [
      `fan-out at saturation, events delivered/s (${n(s.saturationConnections)} conns, ${s.saturationScopes} scopes, ${s.saturationBatch} events/publish)`,
      n(sync.saturatedPerSecond),
      peerCell(uws, (x) => x.saturatedPerSecond),
      peerCell(naive, (x) => x.saturatedPerSecond),
      peerCell(sio, (x) => x.saturatedPerSecond),
      '',
      '',
    ],
    [
      '… while publishers got events acknowledged at, events/s',
      n(sync.publishedPerSecond),
      peerCell(uws, (x) => x.publishedPerSecond),
      peerCell(naive, (x) => x.publishedPerSecond),
      peerCell(sio, (x) => x.publishedPerSecond),
      '',
      '',
    ],
    [
      'this system ÷ peer (delivered/s on the shared box)',
      '1.00',
      n(ofUws, 2),
      n(ratio(naive), 2),
      n(overSio, 2),
      fanoutTarget,
      fanoutVerdict(ofUws, overSio),
    ],
    [
      '… deliveries per CPU-second of the fan-out tier (gateways; the peer’s nodes)',
      n(sync.deliveriesPerCpuSecond),
      peerCell(uws, (x) => x.deliveriesPerCpuSecond),
      peerCell(naive, (x) => x.deliveriesPerCpuSecond),
      peerCell(sio, (x) => x.deliveriesPerCpuSecond),
      '',
      '',
    ],
    [
      'this system ÷ peer (deliveries per CPU-second)',
      '1.00',
      n(cpuOfUws, 2),
      n(cpuRatio(naive), 2),
      n(cpuOverSio, 2),
      fanoutTarget,
      fanoutVerdict(cpuOfUws, cpuOverSio),
    ],
    [
      `fan-out p50 at ${n(s.eventsPerSecond)} events/s (${n(s.rateConnections)} conns, ${s.rateScopes} scopes), ms`,
      n(sync.p50Ms, 1),
      peerCell(uws, (x) => x.p50Ms, 1),
      peerCell(naive, (x) => x.p50Ms, 1),
      peerCell(sio, (x) => x.p50Ms, 1),
      '',
      '',
    ],
    [
      'fan-out p99 at the same rate, ms',
      n(sync.p99Ms, 1),
      peerCell(uws, (x) => x.p99Ms, 1),
      peerCell(naive, (x) => x.p99Ms, 1),
      peerCell(sio, (x) => x.p99Ms, 1),
      `≤ ${TARGETS.p99Ms} ms`,
      verdict(meets(sync.p99Ms, (v) => v <= TARGETS.p99Ms)),
    ],
    [
      'fan-out correctness (no loss, no duplicates, all delivered)',
      sync.correct ? 'yes' : '**no**',
      uws ? (uws.correct ? 'yes' : '**no**') : 'n/a',
      naive ? (naive.correct ? 'yes' : '**no**') : 'n/a',
      sio ? (sio.correct ? 'yes' : '**no**') : 'n/a',
      'yes',
      verdict(sync.correct),
    ],
    [
      `gateway RSS per idle connection (${n(s.idleConnections)} conns), KiB`,
      n(f.rssPerConnectionKiB, 1),
      '',
      '',
      '',
      `≤ ${TARGETS.rssKiB} KiB`,
      verdict(meets(f.rssPerConnectionKiB, (v) => v <= TARGETS.rssKiB)),
    ],
    [
      `mutations/s (${s.writers} writers, closed loop)`,
      n(f.mutationsPerSecond),
      '',
      '',
      '',
      '',
      f.mutationsCorrect ? 'all acknowledged, log exact' : '**writes lost or failed**',
    ],
    ['mutation p99, ms', n(f.mutationP99Ms, 1), '', '', '', '', ''],
    [
      `reconnect storm: ${n(s.stormClients)} clients caught up, ms`,
      f.stormCaughtUp ? n(f.stormCatchUpMs) : '**not all caught up**',
      '',
      '',
      '',
      `${n(TARGETS.stormClients)} in ≤ ${TARGETS.stormMs} ms`,
      s.stormClients >= TARGETS.stormClients
        ? verdict(meets(stormScaled, (v) => v <= TARGETS.stormMs))
        : `${verdict(meets(stormScaled, (v) => v <= TARGETS.stormMs))} (at ${n(s.stormClients)})`,
    ],
    [
      'reconnect storm: of which until every socket was open again, ms',
      n(f.stormReconnectedMs),
      '',
      '',
      '',
      '',
      '',
    ],
    [
      'the same clients connecting cold (connect + bootstrap), ms',
      n(f.stormInitialConnectMs),
      Number.isFinite(f.stormFloorMs) ? n(f.stormFloorMs) : 'n/a',
      '',
      '',
      '',
      '',
    ],
    [
      `reconnect storm: delta queries to Postgres (distinct scope,cursor pairs: ${n(f.stormResumePairs)})`,
      n(f.stormDeltaQueries),
      '',
      '',
      '',
      `≤ ${n(f.stormResumePairs)}`,
      verdict(meets(f.stormDeltaQueries, (v) => v <= f.stormResumePairs)),
    ],
    [
      `… delta requests from the gateways to the delta service (distinct gateway,scope,cursor: ${n(f.stormResumePairsPerNode)})`,
      n(f.stormDeltaRequests),
      '',
      '',
      '',
      '',
      '',
    ],
    [
      `bootstrap of a ${n(s.bootstrapRecords)}-record scope, HTTP p50, ms`,
      n(f.bootstrapHttpP50Ms),
      '',
      '',
      '',
      '',
      f.bootstrapCorrect ? 'complete' : '**incomplete**',
    ],
    ['bootstrap over WebSocket, all clients served, ms', n(f.bootstrapWsAllMs), '', '', '', '', ''],
  ];
  return markdownTable(
    ['figure', 'this system', 'uWS local', 'ws + Redis', 'Socket.IO + Redis', 'target', 'status'],
    rows,
  );
}
