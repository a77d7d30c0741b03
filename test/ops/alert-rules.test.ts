import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import {
  ALERT_DEFAULTS,
  alertOptionsFromEnv,
  commonGroups,
  composeWatchdogGroup,
  kubernetesGroup,
  type RuleGroup,
} from '../../deploy/generate/alerts';
import { renderDashboards } from '../../deploy/generate/dashboards';
import {
  renderAlertsFile,
  renderKubernetesAlertsFile,
  renderPrometheusRule,
} from '../../deploy/generate/prometheus-rule';
import { requireBinary } from './processes';
import { readRepoFile, repoPath } from './repo';

// The alert rules: generated files equal to the generator's output, every rule following the
// conventions (namespace kept and carried, severity, absolute runbook and dashboard links, probes
// out of request ratios), and `promtool test rules` with one test file per rule group, each alert
// exercised firing at least once with its exact labels (namespace included).

const ALL_GROUPS: RuleGroup[] = [...commonGroups(), composeWatchdogGroup(), kubernetesGroup()];
const TESTS_DIR = 'deploy/prometheus/tests';

interface PromtoolTestFile {
  rule_files: string[];
  tests: {
    alert_rule_test?: { alertname: string; exp_alerts: { exp_labels: Record<string, string> }[] }[];
  }[];
}

describe('generated rule files', () => {
  it('equal the generator output (regenerate with node --import tsx deploy/generate/main.ts)', () => {
    expect(readRepoFile('deploy/prometheus/alerts.yml')).toBe(renderAlertsFile());
    expect(readRepoFile('deploy/prometheus/kubernetes-alerts.yml')).toBe(renderKubernetesAlertsFile());
    expect(readRepoFile('k8s/base/prometheusrule.yaml')).toBe(renderPrometheusRule());
  });

  it('ship the common groups plus the Kubernetes group as a PrometheusRule kube-prometheus-stack selects', () => {
    const rule = parseAllDocuments(readRepoFile('k8s/base/prometheusrule.yaml'))[0]!.toJSON();
    expect(rule.metadata.labels).toEqual({ release: 'kube-prometheus-stack' });
    expect(rule.spec.groups).toEqual([...commonGroups(), kubernetesGroup()]);
  });

  it('take absolute link bases from the environment and refuse relative ones', () => {
    expect(alertOptionsFromEnv({})).toEqual(ALERT_DEFAULTS);
    const options = alertOptionsFromEnv({
      SYNC_RUNBOOK_BASE_URL: 'https://wiki.example.org/sync/ops/',
      SYNC_GRAFANA_URL: 'https://grafana.example.org',
    });
    const rule = commonGroups(options)[1]!.rules[0]!.annotations as Record<string, string>;
    expect(rule.runbook_url).toBe('https://wiki.example.org/sync/ops#runbook-syncgatewaydown');
    expect(rule.dashboard_url).toMatch(/^https:\/\/grafana\.example\.org\/d\/sync-gateway\?var-namespace=/);
    expect(() => alertOptionsFromEnv({ SYNC_RUNBOOK_BASE_URL: 'docs/operations.md' })).toThrow(
      /SYNC_RUNBOOK_BASE_URL/,
    );
  });
});

describe('every rule', () => {
  interface Rule {
    alert: string;
    expr: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  }
  const rules = ALL_GROUPS.flatMap((g) => g.rules as unknown as Rule[]);
  const dashboardUids = new Set(
    [...renderDashboards().values()].map((json) => JSON.parse(json).uid as string),
  );
  const operations = readRepoFile('docs/operations.md');

  it.each(rules.map((r) => [r.alert as string, r]))('%s follows the conventions', (_name, rule) => {
    expect(['critical', 'warning', 'info']).toContain(rule.labels.severity);
    const runbook = String(rule.annotations.runbook_url);
    expect(runbook).toMatch(/^https:\/\/\S+#runbook-[a-z]+$/);
    expect(runbook.split('#')[1]).toBe(`runbook-${String(rule.alert).toLowerCase()}`);
    expect(operations, `runbook section for ${rule.alert}`).toContain(
      `<a id="${runbook.split('#')[1]}"></a>`,
    );
    const dashboard = /\/d\/([a-z-]+)\?var-namespace=\{\{ \$labels\.namespace \}\}$/.exec(
      String(rule.annotations.dashboard_url),
    );
    expect(dashboard && dashboardUids.has(dashboard[1]!), String(rule.annotations.dashboard_url)).toBe(true);
    const expr = String(rule.expr);
    // Every aggregation keeps namespace, so two environments never merge into one series.
    for (const by of expr.matchAll(/\b(?:by|on) \(([^)]*)\)/g)) {
      expect(
        by[1]!.split(',').map((s) => s.trim()),
        `${rule.alert}: ${by[0]}`,
      ).toContain('namespace');
    }
    expect(expr, `${rule.alert}: no aggregation without by (namespace)`).not.toMatch(
      /\b(sum|max|min|avg|count) \(/,
    );
    // Probes and scrapes are not user traffic.
    for (const selector of expr.matchAll(/sync_http_request_duration_seconds_\w+\{([^}]*)\}/g)) {
      expect(selector[1], rule.alert).toContain('route!~"/(healthz|readyz|metrics)"');
    }
  });
});

describe('promtool test rules, one file per group', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ops-rule-tests-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const files = readdirSync(repoPath(TESTS_DIR)).filter((f) => f.endsWith('.test.yml'));

  it('has a test file for every group, testing every alert of it firing with namespace', () => {
    expect(files.sort()).toEqual(ALL_GROUPS.map((g) => `${g.name}.test.yml`).sort());
    for (const group of ALL_GROUPS) {
      const spec = parse(readRepoFile(TESTS_DIR, `${group.name}.test.yml`)) as PromtoolTestFile;
      const firing = new Map<string, Record<string, string>[]>();
      for (const test of spec.tests) {
        for (const t of test.alert_rule_test ?? []) {
          firing.set(t.alertname, [
            ...(firing.get(t.alertname) ?? []),
            ...t.exp_alerts.map((a) => a.exp_labels),
          ]);
        }
      }
      for (const rule of group.rules) {
        const expected = firing.get(String(rule.alert)) ?? [];
        expect(expected.length, `${group.name}: ${rule.alert} is tested firing`).toBeGreaterThan(0);
        for (const labels of expected)
          expect(labels.namespace, `${rule.alert} carries namespace`).toBeTruthy();
      }
    }
  });

  it.each(files)(
    '%s passes',
    (file) => {
      const promtool = requireBinary('promtool');
      // Annotations (runbook and dashboard links, summaries) are checked above; promtool would compare
      // them literally, so the rule files are copied without them.
      mkdirSync(join(dir, 'tests'), { recursive: true });
      for (const ruleFile of ['alerts.yml', 'kubernetes-alerts.yml']) {
        const groups = (parse(readRepoFile('deploy/prometheus', ruleFile)) as { groups: RuleGroup[] }).groups;
        const stripped = groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _, ...r }) => r) }));
        writeFileSync(join(dir, ruleFile), stringify({ groups: stripped }, { lineWidth: 0 }));
      }
      copyFileSync(repoPath(TESTS_DIR, file), join(dir, 'tests', file));
      let out: string;
      try {
        out = execFileSync(promtool, ['test', 'rules', join(dir, 'tests', file)], {
          encoding: 'utf8',
          stdio: 'pipe',
        });
      } catch (err) {
        const e = err as { stdout?: string; stderr?: string };
        throw new Error(`promtool test rules ${file} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
      }
      expect(out).toContain('SUCCESS');
      // promtool evaluates every rule each simulated minute over days of series: seconds, not ms.
    },
    120_000,
  );
});
