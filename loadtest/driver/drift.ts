/** One reading of a soak's hold: the target's memory and what the clients had received. */
export interface DriftSample {
  /** ms since the hold started. */
  atMs: number;
  /** Gateways' resident memory, summed; undefined when the target does not expose it. */
  rssBytes: number | undefined;
  /** Events delivered to all clients since the hold started. */
  delivered: number;
}

/** What the gateways' memory did over the hold. */
export interface RssDrift {
  startBytes: number;
  endBytes: number;
  /**
   * Least-squares slope in bytes per minute over the readings from `slopeFromMs` on: a garbage
   * collection between two readings moves it far less than it moves `endBytes - startBytes`.
   */
  slopeBytesPerMinute: number;
  /** Readings with RSS, and how many of them the slope is fitted to. */
  samples: number;
  slopeSamples: number;
}

/** The least-squares slope of y over x; NaN with fewer than two distinct x. */
export function leastSquaresSlope(points: readonly (readonly [x: number, y: number])[]): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  let covariance = 0;
  let variance = 0;
  for (const [x, y] of points) {
    covariance += (x - meanX) * (y - meanY);
    variance += (x - meanX) ** 2;
  }
  return variance === 0 ? Number.NaN : covariance / variance;
}

/**
 * RSS at the first and last readings that have it, and its trend from `slopeFromMs` on (a soak
 * skips the start of its hold, where the gateways still return what the ramp allocated);
 * undefined with no reading.
 */
export function rssDrift(samples: readonly DriftSample[], slopeFromMs = 0): RssDrift | undefined {
  const points = samples.flatMap((s) => (s.rssBytes === undefined ? [] : [[s.atMs, s.rssBytes] as const]));
  if (points.length === 0) return undefined;
  const fitted = points
    .filter(([atMs]) => atMs >= slopeFromMs)
    .map(([atMs, rss]) => [atMs / 60_000, rss] as const);
  return {
    startBytes: points[0]![1],
    endBytes: points[points.length - 1]![1],
    slopeBytesPerMinute: leastSquaresSlope(fitted),
    samples: points.length,
    slopeSamples: fitted.length,
  };
}

/** Events delivered per second between two readings. */
export function deliveryRate(from: DriftSample, to: DriftSample): number {
  const seconds = (to.atMs - from.atMs) / 1000;
  return seconds > 0 ? (to.delivered - from.delivered) / seconds : Number.NaN;
}
