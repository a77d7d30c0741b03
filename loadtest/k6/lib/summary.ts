/**
 * `handleSummary` for every script: the end-of-test summary as JSON (for CI artifacts and
 * comparisons between runs) and as text on stdout, with each threshold marked passed or failed.
 * Written here rather than imported from jslib.k6.io so the scripts run without network access.
 *
 *   export function handleSummary(data: SummaryData) { return summaryOutputs('fanout', data); }
 *
 * SUMMARY_DIR (default `.`) is where `<script>-summary.json` goes.
 */

/** The part of k6's summary data this reads (k6 passes the whole object). */
export interface SummaryData {
  metrics: Record<
    string,
    {
      type: string;
      values: Record<string, number>;
      thresholds?: Record<string, { ok: boolean }>;
    }
  >;
  root_group?: unknown;
  state?: { testRunDurationMs?: number };
}

function formatValue(name: string, key: string, value: number): string {
  if (name.endsWith('_ms') || name.includes('duration') || name.includes('waiting')) {
    if (key !== 'count' && key !== 'rate') return `${value.toFixed(2)}ms`;
  }
  if (key === 'rate') return `${(value * 100).toFixed(2)}%`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

/** The text summary: one line per metric, thresholds underneath with ✓ or ✗. */
export function textSummary(script: string, data: SummaryData): string {
  const lines = [`${script}: ${((data.state?.testRunDurationMs ?? 0) / 1000).toFixed(1)} s`];
  let failed = 0;
  for (const name of Object.keys(data.metrics).sort()) {
    const metric = data.metrics[name]!;
    const values = Object.entries(metric.values)
      .map(([k, v]) => `${k}=${formatValue(name, k, v)}`)
      .join(' ');
    lines.push(`  ${name} (${metric.type}) ${values}`);
    for (const [threshold, { ok }] of Object.entries(metric.thresholds ?? {})) {
      if (!ok) failed++;
      lines.push(`    ${ok ? '✓' : '✗'} ${threshold}`);
    }
  }
  lines.push(failed === 0 ? 'all thresholds passed' : `${failed} threshold(s) FAILED`);
  return `${lines.join('\n')}\n`;
}

/** What `handleSummary` returns: the text on stdout and the JSON in SUMMARY_DIR. */
export function summaryOutputs(script: string, data: SummaryData): Record<string, string> {
  const dir = (__ENV.SUMMARY_DIR || '.').replace(/\/+$/, '');
  return {
    stdout: textSummary(script, data),
    [`${dir}/${script}-summary.json`]: JSON.stringify(data, null, 2),
  };
}
