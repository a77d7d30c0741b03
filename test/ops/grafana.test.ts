import { readdirSync } from 'node:fs';
import { createOpsRoutes, createRegistry, registerPoolMetrics } from '@openagents/sync-server-kit';
import { collectDefaultMetrics } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { kubernetesGroup } from '../../deploy/generate/alerts';
import { loadAlertGroups } from '../../deploy/generate/prometheus-rule';
import { createApiMetrics } from '../../services/api/src/metrics';
import { deltaMetricsFor } from '../../services/delta/src/metrics';
import { createGatewayMetrics } from '../../services/gateway/src/metrics';
import { metricNamesIn, readRepoFile, repoPath } from './repo';

// The Grafana dashboards checked as Grafana 10+ would import them (schema version, datasource
// variable, panel types, layout), and every metric named in them or in the alert rules checked to
// exist in the services' code and in docs/metrics.md. Whether each expression returns data from the
// real services is prometheus.stack.test.ts's job.

interface Target {
  refId: string;
  expr: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource: { type: string; uid: string };
  targets: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: {
    list: {
      name: string;
      type: string;
      query: string | { query: string };
      multi?: boolean;
      allValue?: string;
    }[];
  };
  annotations: { list: { name: string; expr?: string }[] };
  panels: Panel[];
}

/** Grafana's variable syntax, spelt out so no linter mistakes it for a JS template. */
const DATASOURCE_UID = `$${'{'}datasource}`;

const DIR = repoPath('deploy/grafana/dashboards');
const dashboards = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => [f, JSON.parse(readRepoFile('deploy/grafana/dashboards', f)) as Dashboard] as const);

/**
 * Metric names the services register: their real metric factories run against a fresh registry,
 * plus prom-client's default process and Node metrics with the prefix every service uses.
 */
function registeredMetricNames(): Set<string> {
  const registry = createRegistry('names', { defaultMetrics: false });
  createApiMetrics(registry);
  deltaMetricsFor(registry);
  createGatewayMetrics(registry);
  registerPoolMetrics(registry, { totalCount: 0, idleCount: 0, waitingCount: 0 }, 1);
  // sync_ready / sync_draining / sync_dependency_up come with every service's ops routes;
  // sync_build_info with createRegistry.
  createOpsRoutes({ registry, readiness: async () => ({}), isDraining: () => false });
  collectDefaultMetrics({ register: registry, prefix: 'sync_' });
  return new Set(registry.getMetricsAsArray().map((m) => m.name));
}

describe('Grafana dashboards', () => {
  it('are the four expected dashboards', () => {
    expect(dashboards.map(([f]) => f).sort()).toEqual([
      'sync-delta.json',
      'sync-gateway.json',
      'sync-overview.json',
      'sync-write-path.json',
    ]);
  });

  it.each(dashboards)('%s imports into Grafana 10+', (_file, d) => {
    expect(d.schemaVersion).toBeGreaterThanOrEqual(38);
    expect(d.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    const variable = d.templating.list.find((v) => v.name === 'datasource');
    expect(variable).toMatchObject({ type: 'datasource', query: 'prometheus' });
    // One environment at a time, then the jobs and instances to look at.
    const vars = Object.fromEntries(d.templating.list.map((v) => [v.name, v]));
    expect(vars.namespace).toMatchObject({ type: 'query', multi: false });
    expect(vars.job).toMatchObject({ type: 'query', multi: true, allValue: '.*' });
    expect(vars.instance).toMatchObject({ type: 'query', multi: true, allValue: '.*' });
    // The first row is the ten-second health check.
    expect(d.panels[0]).toMatchObject({ type: 'row', title: 'Is it healthy?' });
    const health = d.panels.slice(
      1,
      d.panels.findIndex((p, i) => i > 0 && p.type === 'row'),
    );
    expect(health.length).toBeGreaterThanOrEqual(6);
    expect(health.every((p) => p.type === 'stat' && p.gridPos.y === 1)).toBe(true);
    expect(d.annotations.list.map((a) => a.name)).toEqual(expect.arrayContaining(['Restarts', 'New builds']));
    const ids = new Set<number>();
    for (const panel of d.panels) {
      expect(['timeseries', 'stat', 'row'], panel.title).toContain(panel.type);
      expect(ids.has(panel.id), `duplicate id ${panel.id}`).toBe(false);
      ids.add(panel.id);
      if (panel.type === 'row') continue;
      const { x, y, w, h } = panel.gridPos;
      expect(x >= 0 && w > 0 && x + w <= 24 && y >= 0 && h > 0, panel.title).toBe(true);
      expect(panel.datasource).toEqual({ type: 'prometheus', uid: DATASOURCE_UID });
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      expect(new Set(panel.targets.map((t) => t.refId)).size).toBe(panel.targets.length);
      for (const t of panel.targets) {
        expect(t.datasource.uid).toBe(DATASOURCE_UID);
        expect(t.expr.trim(), panel.title).not.toBe('');
        expect(t.expr.split('(').length, `${panel.title}: balanced parentheses`).toBe(
          t.expr.split(')').length,
        );
        // Every selector is scoped to the chosen namespace: environments never merge.
        for (const selector of t.expr.matchAll(/\b(?:sync_[a-z0-9_]+|up)\{([^}]*)\}/g)) {
          expect(selector[1], `${panel.title}: ${t.expr}`).toContain('namespace="$namespace"');
        }
        expect(t.expr, `${panel.title}: a bare metric name`).not.toMatch(
          /\b(sync_[a-z0-9_]+|up)\b(?![{(\w])/,
        );
      }
    }
    expect(new Set(dashboards.map(([, x]) => x.uid)).size).toBe(dashboards.length);
  });

  it('use only metrics the services register, each documented in docs/metrics.md', () => {
    const known = registeredMetricNames();
    const doc = readRepoFile('docs/metrics.md');
    const used = new Set<string>();
    const exprs = [
      ...dashboards.flatMap(([, d]) => d.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr))),
      ...dashboards.flatMap(([, d]) => d.annotations.list.flatMap((a) => (a.expr ? [a.expr] : []))),
      ...loadAlertGroups().flatMap((g) => g.rules.map((r) => String(r.expr))),
    ];
    for (const expr of exprs) for (const name of metricNamesIn(expr)) used.add(name);
    expect(used.size).toBeGreaterThan(30);
    for (const name of used) {
      expect(known.has(name), `${name} is registered by some service`).toBe(true);
      expect(doc.includes(`\`${name}\``), `${name} documented in docs/metrics.md`).toBe(true);
    }
  });

  it('has every alert rule linked to a runbook section in docs/operations.md', () => {
    const doc = readRepoFile('docs/operations.md');
    for (const group of [...loadAlertGroups(), kubernetesGroup()]) {
      for (const rule of group.rules as Record<string, unknown>[]) {
        const anchor = String((rule.annotations as Record<string, string>).runbook_url).split('#')[1]!;
        expect(anchor).toBe(`runbook-${String(rule.alert).toLowerCase()}`);
        expect(doc, `docs/operations.md has a runbook for ${rule.alert}`).toMatch(
          new RegExp(`<a id="${anchor}"></a>|^#+ .*${rule.alert}`, 'm'),
        );
      }
    }
  });
});
