import { LRUCache } from 'lru-cache';
import type { GatewayConfig } from './config';
import { hasToken, newTokenBucket, type TokenBucket, takeToken } from './token-bucket';

/** Client IPs whose upgrade and failed-auth buckets are remembered (least recently seen go first). */
export const MAX_TRACKED_IPS = 100_000;
/** Longest client address kept as a key (a trusted header is still bounded). */
const MAX_IP_LENGTH = 64;

export type IpRefusal = 'upgrade_rate' | 'failed_auth_rate' | 'ip_connections';

type LimitsConfig = Pick<
  GatewayConfig,
  | 'MAX_CONNECTIONS_PER_SUBJECT'
  | 'MAX_CONNECTIONS_PER_IP'
  | 'UPGRADE_RATE_PER_SECOND'
  | 'UPGRADE_BURST'
  | 'FAILED_AUTH_RATE_PER_SECOND'
  | 'FAILED_AUTH_BURST'
>;

/**
 * The operator's connection limits of one node: connections per client IP and per token
 * subject, and per-IP token buckets for upgrade attempts and failed authentications.
 *
 * The IP checks run before the token is verified, so a flood of upgrades (or of bad tokens)
 * costs a map lookup each instead of an HMAC. Counts are reserved when an upgrade is admitted
 * and released when it fails or its connection closes, so concurrent upgrades cannot all slip
 * under the limit. Memory is bounded: counts exist only for IPs and subjects with open or
 * pending connections, and the buckets live in an LRU of at most MAX_TRACKED_IPS entries (an IP
 * forgotten by the LRU starts again with a full bucket).
 */
export class ConnectionLimits {
  readonly #config: LimitsConfig;
  readonly #perIp = new Map<string, number>();
  readonly #perSubject = new Map<string, number>();
  readonly #upgradeBuckets: LRUCache<string, TokenBucket>;
  readonly #failedAuthBuckets: LRUCache<string, TokenBucket>;

  constructor(config: LimitsConfig, maxTrackedIps = MAX_TRACKED_IPS) {
    this.#config = config;
    this.#upgradeBuckets = new LRUCache({ max: maxTrackedIps });
    this.#failedAuthBuckets = new LRUCache({ max: maxTrackedIps });
  }

  /** Bounds an address to a map key. */
  static key(ip: string): string {
    return ip.length > MAX_IP_LENGTH ? ip.slice(0, MAX_IP_LENGTH) : ip;
  }

  /**
   * Admits an upgrade attempt from `ip` before its token is verified, reserving one of the IP's
   * connections; undefined when admitted (call `releaseIp` if it does not become a connection).
   */
  admitIp(ip: string, now: number): IpRefusal | undefined {
    const c = this.#config;
    if (c.FAILED_AUTH_RATE_PER_SECOND > 0) {
      const bucket = this.#failedAuthBuckets.get(ip);
      const limits = { ratePerSecond: c.FAILED_AUTH_RATE_PER_SECOND, burst: c.FAILED_AUTH_BURST };
      if (bucket && !hasToken(bucket, limits, now)) return 'failed_auth_rate';
    }
    if (c.UPGRADE_RATE_PER_SECOND > 0) {
      let bucket = this.#upgradeBuckets.get(ip);
      if (!bucket) {
        bucket = newTokenBucket(c.UPGRADE_BURST, now);
        this.#upgradeBuckets.set(ip, bucket);
      }
      const limits = {
        ratePerSecond: c.UPGRADE_RATE_PER_SECOND,
        burst: c.UPGRADE_BURST,
        closeAfter: Infinity,
      };
      if (takeToken(bucket, limits, now) !== 'ok') return 'upgrade_rate';
    }
    const open = this.#perIp.get(ip) ?? 0;
    if (c.MAX_CONNECTIONS_PER_IP > 0 && open >= c.MAX_CONNECTIONS_PER_IP) return 'ip_connections';
    this.#perIp.set(ip, open + 1);
    return undefined;
  }

  releaseIp(ip: string): void {
    release(this.#perIp, ip);
  }

  /** A token from `ip` failed verification: takes from the IP's failed-auth bucket. */
  failedAuth(ip: string, now: number): void {
    const c = this.#config;
    if (c.FAILED_AUTH_RATE_PER_SECOND === 0) return;
    let bucket = this.#failedAuthBuckets.get(ip);
    if (!bucket) {
      bucket = newTokenBucket(c.FAILED_AUTH_BURST, now);
      this.#failedAuthBuckets.set(ip, bucket);
    }
    takeToken(
      bucket,
      { ratePerSecond: c.FAILED_AUTH_RATE_PER_SECOND, burst: c.FAILED_AUTH_BURST, closeAfter: Infinity },
      now,
    );
  }

  /** Reserves one of the subject's connections after its token verified; false when at the limit. */
  admitSubject(sub: string): boolean {
    const open = this.#perSubject.get(sub) ?? 0;
    const max = this.#config.MAX_CONNECTIONS_PER_SUBJECT;
    if (max > 0 && open >= max) return false;
    this.#perSubject.set(sub, open + 1);
    return true;
  }

  releaseSubject(sub: string): void {
    release(this.#perSubject, sub);
  }

  /** Open or pending connections of an IP / a subject (for tests and metrics). */
  countOf(kind: 'ip' | 'subject', key: string): number {
    return (kind === 'ip' ? this.#perIp : this.#perSubject).get(key) ?? 0;
  }

  /** Remembered per-IP buckets (bounded by MAX_TRACKED_IPS each). */
  get trackedIps(): number {
    return this.#upgradeBuckets.size + this.#failedAuthBuckets.size;
  }
}

function release(counts: Map<string, number>, key: string): void {
  const n = counts.get(key) ?? 0;
  if (n <= 1) counts.delete(key);
  else counts.set(key, n - 1);
}

/**
 * The client's address: the last entry of the trusted proxy header when one is configured (the
 * entry that proxy appended or set), else the socket's peer address. Read during the upgrade
 * callback, before any await (uWS request objects are invalid afterwards).
 */
export function clientAddress(
  remoteAddressText: ArrayBuffer,
  trustedHeaderValue: string | undefined,
): string {
  if (trustedHeaderValue) {
    const parts = trustedHeaderValue.split(',');
    const last = parts[parts.length - 1]!.trim();
    if (last) return ConnectionLimits.key(last);
  }
  return ConnectionLimits.key(Buffer.from(remoteAddressText).toString('utf8'));
}
