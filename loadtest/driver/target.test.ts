import { describe, expect, it } from 'vitest';
import { sumMetric, toWebSocketUrl } from './target';

const METRICS = `# HELP sync_gateway_delta_requests_total Reads sent to the delta source
# TYPE sync_gateway_delta_requests_total counter
sync_gateway_delta_requests_total{kind="delta",result="ok"} 12
sync_gateway_delta_requests_total{kind="delta",result="error"} 1
sync_gateway_delta_requests_total{kind="heads",result="ok"} 40
sync_gateway_delta_requests_total_other 99
sync_gateway_connections 3
`;

describe('sumMetric', () => {
  it('sums every label set, or only the matching ones', () => {
    expect(sumMetric(METRICS, 'sync_gateway_delta_requests_total')).toBe(53);
    expect(sumMetric(METRICS, 'sync_gateway_delta_requests_total', { kind: 'delta' })).toBe(13);
    expect(sumMetric(METRICS, 'sync_gateway_delta_requests_total', { kind: 'delta', result: 'ok' })).toBe(12);
    expect(sumMetric(METRICS, 'sync_gateway_connections')).toBe(3);
  });

  it('is undefined for a metric that is not there', () => {
    expect(sumMetric(METRICS, 'sync_gateway_delta_requests')).toBeUndefined();
    expect(sumMetric(METRICS, 'sync_gateway_delta_requests_total', { kind: 'bootstrap' })).toBeUndefined();
  });
});

describe('toWebSocketUrl', () => {
  it('maps http to ws and https to wss', () => {
    expect(toWebSocketUrl('http://127.0.0.1:8080/')).toBe('ws://127.0.0.1:8080');
    expect(toWebSocketUrl('https://sync.example.com')).toBe('wss://sync.example.com');
  });
});
