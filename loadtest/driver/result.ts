import type { LatencySummary } from './histogram';

/** One figure of a run, in the spirit of k6's metric types. */
export type Metric =
  | { kind: 'counter'; value: number; perSecond?: number }
  | { kind: 'gauge'; value: number; unit?: string }
  | ({ kind: 'trend'; unit: 'ms' } & LatencySummary);

/** A correctness check: the driver verifies the guarantee while it loads. */
export interface Check {
  name: string;
  ok: boolean;
  detail?: string;
}

/** What a scenario run produced; printed as a summary and written as JSON. */
export interface ScenarioResult {
  scenario: string;
  target: string;
  startedAt: string;
  durationMs: number;
  /** The scenario's parameters (connections, scopes, rate, ...). */
  options: Record<string, unknown>;
  metrics: Record<string, Metric>;
  checks: Check[];
  /** Readings taken every few seconds (a soak's memory and delivery rate); JSON only. */
  samples?: Record<string, number>[];
}

export function counter(value: number, seconds?: number): Metric {
  return seconds && seconds > 0
    ? { kind: 'counter', value, perSecond: value / seconds }
    : { kind: 'counter', value };
}

export function gauge(value: number, unit?: string): Metric {
  return unit ? { kind: 'gauge', value, unit } : { kind: 'gauge', value };
}

export function trend(summary: LatencySummary): Metric {
  return { kind: 'trend', unit: 'ms', ...summary };
}

export function check(name: string, ok: boolean, detail?: string): Check {
  return detail === undefined ? { name, ok } : { name, ok, detail };
}

/** True when every check passed. */
export function passed(result: ScenarioResult): boolean {
  return result.checks.every((c) => c.ok);
}
