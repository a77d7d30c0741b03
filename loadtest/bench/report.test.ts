import { describe, expect, it } from 'vitest';
import { type BenchFigures, benchTable } from './report';

const figures: BenchFigures = {
  sizes: {
    saturationConnections: 2000,
    saturationScopes: 20,
    saturationBatch: 10,
    rateConnections: 500,
    rateScopes: 25,
    eventsPerSecond: 200,
    idleConnections: 2000,
    writers: 16,
    stormClients: 5000,
    stormScopes: 50,
    bootstrapRecords: 10_000,
  },
  fanout: {
    sync: {
      saturatedPerSecond: 40_000,
      publishedPerSecond: 400,
      fanoutCpuSeconds: 2,
      deliveriesPerCpuSecond: 120_000,
      p50Ms: 2,
      p99Ms: 12.5,
      correct: true,
    },
    'uws-local': {
      saturatedPerSecond: 50_000,
      publishedPerSecond: 500,
      fanoutCpuSeconds: 2,
      deliveriesPerCpuSecond: 150_000,
      p50Ms: 1,
      p99Ms: 4,
      correct: true,
    },
    'ws-redis': {
      saturatedPerSecond: 20_000,
      publishedPerSecond: 200,
      fanoutCpuSeconds: 2,
      deliveriesPerCpuSecond: 40_000,
      p50Ms: 3,
      p99Ms: 30,
      correct: true,
    },
    'socketio-redis': {
      saturatedPerSecond: 10_000,
      publishedPerSecond: 100,
      fanoutCpuSeconds: 2,
      deliveriesPerCpuSecond: 20_000,
      p50Ms: 5,
      p99Ms: 60,
      correct: true,
    },
  },
  rssPerConnectionKiB: 9.5,
  mutationsPerSecond: 1200,
  mutationP99Ms: 40,
  mutationsCorrect: true,
  stormCatchUpMs: 2500,
  stormReconnectedMs: 1500,
  stormInitialConnectMs: 4000,
  stormFloorMs: 900,
  stormCaughtUp: true,
  stormDeltaRequests: 100,
  stormDeltaQueries: 50,
  stormResumePairs: 50,
  stormResumePairsPerNode: 100,
  bootstrapHttpP50Ms: 300,
  bootstrapWsAllMs: 900,
  bootstrapCorrect: true,
};

describe('benchTable', () => {
  it('puts this system next to each peer with ratios and verdicts against the targets', () => {
    const table = benchTable(figures);
    const rows = table.split('\n');
    expect(rows[0]).toBe(
      '| figure | this system | uWS local | ws + Redis | Socket.IO + Redis | target | status |',
    );
    expect(table).toContain('| 40,000 | 50,000 | 20,000 | 10,000 |');
    expect(table).toContain('acknowledged at, events/s | 400 | 500 | 200 | 100 |');
    // 40k / 50k = 0.8 of uWS (met); 40k / 10k = 4× Socket.IO (not met)
    expect(table).toContain(
      '| this system ÷ peer (delivered/s on the shared box) | 1.00 | 0.80 | 2.00 | 4.00 |',
    );
    expect(table).toContain('| 4.00 | ≥ 0.7 of uWS; ≥ 5× Socket.IO | met; **not met** |');
    // Per CPU-second: 120k / 150k = 0.8 of uWS, 120k / 20k = 6× Socket.IO: both met.
    expect(table).toContain(
      'fan-out tier (gateways; the peer’s nodes) | 120,000 | 150,000 | 40,000 | 20,000 |',
    );
    expect(table).toContain(
      '| this system ÷ peer (deliveries per CPU-second) | 1.00 | 0.80 | 3.00 | 6.00 | ≥ 0.7 of uWS; ≥ 5× Socket.IO | met; met |',
    );
    expect(table).toMatch(/p99 at the same rate, ms \| 12\.5 \| 4\.0 \| 30\.0 \| 60\.0 \| ≤ 25 ms \| met \|/);
    expect(table).toMatch(/RSS per idle connection .*\| 9\.5 \|.*\| ≤ 8 KiB \| \*\*not met\*\* \|/);
    expect(table).toMatch(/5,000 clients caught up, ms \| 2,500 \|.*\| met \|/);
    expect(table).toContain('connecting cold (connect + bootstrap), ms | 4,000 | 900 |');
    expect(table).toMatch(/to Postgres \(distinct scope,cursor pairs: 50\) \| 50 \|.*\| ≤ 50 \| met \|/);
    expect(table).toMatch(/distinct gateway,scope,cursor: 100\) \| 100 \|/);
  });

  it('says n/a for a peer that was not measured and flags a storm that did not finish', () => {
    const table = benchTable({
      ...figures,
      fanout: { sync: figures.fanout.sync },
      stormCaughtUp: false,
      stormDeltaRequests: Number.NaN,
      stormDeltaQueries: Number.NaN,
    });
    expect(table).toContain(
      '| this system ÷ peer (delivered/s on the shared box) | 1.00 | n/a | n/a | n/a |',
    );
    expect(table).toContain('**not all caught up**');
    expect(table).toMatch(/to Postgres \(distinct scope,cursor pairs: 50\) \| n\/a \|/);
  });
});
