import { unreachable } from '@openagents/sync-protocol';
import type { Metric, ScenarioResult } from './result';

function fmt(value: number, digits = 2): string {
  if (!Number.isFinite(value)) return '-';
  if (Math.abs(value) >= 1000) return Math.round(value).toString();
  return Number(value.toFixed(digits)).toString();
}

function ms(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return value >= 1000 ? `${fmt(value / 1000)}s` : `${fmt(value)}ms`;
}

function describe(metric: Metric): string {
  switch (metric.kind) {
    case 'counter':
      return metric.perSecond === undefined
        ? fmt(metric.value)
        : `${fmt(metric.value)}  ${fmt(metric.perSecond)}/s`;
    case 'gauge':
      return metric.unit ? `${fmt(metric.value)} ${metric.unit}` : fmt(metric.value);
    case 'trend':
      return [
        `avg=${ms(metric.avg)}`,
        `min=${ms(metric.min)}`,
        `med=${ms(metric.med)}`,
        `max=${ms(metric.max)}`,
        `p(90)=${ms(metric.p90)}`,
        `p(95)=${ms(metric.p95)}`,
        `p(99)=${ms(metric.p99)}`,
        `n=${metric.count}`,
      ].join(' ');
    default:
      return unreachable(metric);
  }
}

/** A k6-like end-of-test summary: checks with ✓/✗, then one dotted line per metric. */
export function formatSummary(result: ScenarioResult): string {
  const lines: string[] = [];
  const options = Object.entries(result.options)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  lines.push(`     scenario: ${result.scenario}  target: ${result.target}  ${options}`);
  lines.push(`     duration: ${ms(result.durationMs)}`);
  lines.push('');
  for (const c of result.checks) {
    lines.push(`     ${c.ok ? '✓' : '✗'} ${c.name}${c.detail ? ` (${c.detail})` : ''}`);
  }
  lines.push('');
  const width = Math.max(30, ...Object.keys(result.metrics).map((k) => k.length + 4));
  for (const [name, metric] of Object.entries(result.metrics)) {
    lines.push(`     ${name}${'.'.repeat(width - name.length)}: ${describe(metric)}`);
  }
  return lines.join('\n');
}
