import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

/** deploy/prometheus/alerts.yml: the one source of the alert rules. */
export const ALERTS_FILE = fileURLToPath(new URL('../prometheus/alerts.yml', import.meta.url));

/**
 * Rules that only make sense under Kubernetes (kube-state-metrics series): readiness, stuck
 * rollouts, a failed migration Job. Checked by `promtool check rules`, not by the stack test
 * (there is no kube-state-metrics there).
 */
export const KUBERNETES_GROUP = {
  name: 'sync-kubernetes',
  rules: [
    {
      alert: 'SyncPodNotReady',
      expr: 'sum by (namespace, pod) (kube_pod_status_ready{condition="false", pod=~"sync-(api|delta|gateway)-.*"}) > 0',
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Pod {{ $labels.namespace }}/{{ $labels.pod }} has been unready for 5 minutes',
        description:
          '/readyz answers 503: a dependency (Postgres, Redis, delta) does not answer, or the pod is stuck draining.',
        runbook_url: 'docs/operations.md#runbook-syncpodnotready',
      },
    },
    {
      alert: 'SyncDeploymentReplicasUnavailable',
      expr: 'max by (namespace, deployment) (kube_deployment_status_replicas_unavailable{deployment=~"sync-(api|delta|gateway)"}) > 0',
      for: '15m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Deployment {{ $labels.namespace }}/{{ $labels.deployment }} is missing replicas',
        runbook_url: 'docs/operations.md#runbook-syncdeploymentreplicasunavailable',
      },
    },
    {
      alert: 'SyncMigrationFailed',
      expr: 'max by (namespace, job_name) (kube_job_status_failed{job_name=~"sync-migrate.*"}) > 0',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Migration Job {{ $labels.namespace }}/{{ $labels.job_name }} failed',
        runbook_url: 'docs/operations.md#runbook-syncmigrationfailed',
      },
    },
  ],
};

/** The groups of alerts.yml, parsed. */
export function loadAlertGroups(file = ALERTS_FILE): { name: string; rules: Record<string, unknown>[] }[] {
  return (
    parse(readFileSync(file, 'utf8')) as { groups: { name: string; rules: Record<string, unknown>[] }[] }
  ).groups;
}

/** k8s/base/prometheusrule.yaml: alerts.yml plus the Kubernetes-only group, as a PrometheusRule. */
export function renderPrometheusRule(): string {
  const rule = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'openagents-sync' },
    spec: { groups: [...loadAlertGroups(), KUBERNETES_GROUP] },
  };
  return (
    '# Generated from deploy/prometheus/alerts.yml by `node --import tsx deploy/generate/main.ts`.\n' +
    '# Do not edit by hand: test/ops fails when this file and alerts.yml disagree.\n' +
    stringify(rule, { lineWidth: 0 })
  );
}
