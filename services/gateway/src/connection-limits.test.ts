import { describe, expect, it } from 'vitest';
import { gatewayDefaults } from './config';
import { ConnectionLimits, clientAddress, MAX_TRACKED_IPS } from './connection-limits';

const text = (s: string) => new TextEncoder().encode(s).buffer as ArrayBuffer;

describe('ConnectionLimits', () => {
  it('reserves connections per IP and per subject and releases them', () => {
    const limits = new ConnectionLimits(
      gatewayDefaults({ MAX_CONNECTIONS_PER_IP: 2, MAX_CONNECTIONS_PER_SUBJECT: 1 }),
    );
    expect(limits.admitIp('a', 0)).toBeUndefined();
    expect(limits.admitIp('a', 0)).toBeUndefined();
    expect(limits.admitIp('a', 0)).toBe('ip_connections');
    expect(limits.admitIp('b', 0)).toBeUndefined();
    limits.releaseIp('a');
    expect(limits.admitIp('a', 0)).toBeUndefined();
    expect(limits.admitSubject('u')).toBe(true);
    expect(limits.admitSubject('u')).toBe(false);
    limits.releaseSubject('u');
    expect(limits.countOf('subject', 'u')).toBe(0);
    expect(limits.admitSubject('u')).toBe(true);
  });

  it('refuses an IP over its upgrade rate, and lets it back in as the bucket refills', () => {
    const limits = new ConnectionLimits(gatewayDefaults({ UPGRADE_RATE_PER_SECOND: 2, UPGRADE_BURST: 3 }));
    const results = [0, 0, 0, 0].map(() => limits.admitIp('a', 0));
    expect(results).toEqual([undefined, undefined, undefined, 'upgrade_rate']);
    expect(limits.admitIp('b', 0)).toBeUndefined();
    expect(limits.admitIp('a', 499)).toBe('upgrade_rate');
    expect(limits.admitIp('a', 500)).toBeUndefined();
  });

  it('refuses an IP unverified once its failed authentications exhaust the bucket', () => {
    const limits = new ConnectionLimits(
      gatewayDefaults({ FAILED_AUTH_RATE_PER_SECOND: 1, FAILED_AUTH_BURST: 2 }),
    );
    limits.failedAuth('a', 0);
    expect(limits.admitIp('a', 0)).toBeUndefined();
    limits.releaseIp('a');
    limits.failedAuth('a', 0);
    expect(limits.admitIp('a', 0)).toBe('failed_auth_rate');
    expect(limits.admitIp('b', 0)).toBeUndefined();
    expect(limits.admitIp('a', 1000)).toBeUndefined();
  });

  it('keeps at most maxTrackedIps buckets however many addresses arrive', () => {
    const max = 1000;
    const config = gatewayDefaults({ UPGRADE_RATE_PER_SECOND: 1, FAILED_AUTH_RATE_PER_SECOND: 1 });
    const limits = new ConnectionLimits(config, max);
    for (let i = 0; i < max + 5000; i++) {
      const ip = `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`;
      limits.admitIp(ip, 0);
      limits.releaseIp(ip);
      limits.failedAuth(ip, 0);
    }
    expect(limits.trackedIps).toBe(2 * max);
    expect(MAX_TRACKED_IPS).toBe(100_000);
    expect(limits.countOf('ip', '10.0.0.1')).toBe(0);
  });

  it('with everything at 0 (the default), admits everyone', () => {
    const limits = new ConnectionLimits(gatewayDefaults());
    for (let i = 0; i < 1000; i++) {
      expect(limits.admitIp('a', 0)).toBeUndefined();
      limits.failedAuth('a', 0);
      expect(limits.admitSubject('u')).toBe(true);
    }
    expect(limits.trackedIps).toBe(0);
  });
});

describe('clientAddress', () => {
  it('uses the socket address unless a trusted header is configured and present', () => {
    expect(clientAddress(text('127.0.0.1'), undefined)).toBe('127.0.0.1');
    expect(clientAddress(text('127.0.0.1'), '')).toBe('127.0.0.1');
    expect(clientAddress(text('10.0.0.1'), '203.0.113.7')).toBe('203.0.113.7');
    // The entry the trusted proxy appended is the last one; earlier ones are client-supplied.
    expect(clientAddress(text('10.0.0.1'), 'spoofed, 198.51.100.2 ')).toBe('198.51.100.2');
    expect(clientAddress(text('10.0.0.1'), 'x'.repeat(10_000))).toHaveLength(64);
  });
});
