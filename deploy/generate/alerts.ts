/**
 * The alert rules of OpenAgents Sync, in one place: `deploy/prometheus/alerts.yml` (compose),
 * `deploy/prometheus/kubernetes-alerts.yml` and `k8s/base/prometheusrule.yaml` (Operator) are all
 * rendered from here by `node --import tsx deploy/generate/main.ts`.
 *
 * Conventions every rule follows (test/ops/alerts.test.ts checks them):
 * - every aggregation keeps `namespace` (`sum by (namespace, …)`), so `sync-dev` and `sync` never
 *   merge; every alert carries `namespace`, `severity` (`critical` pages, `warning` is a ticket,
 *   `info` a hint), an absolute `runbook_url` and a `dashboard_url`;
 * - request ratios leave out `/healthz`, `/readyz` and `/metrics`;
 * - a ratio whose numerator only exists once something went wrong uses `or <denominator> * 0`, so
 *   the expression is defined (and tested against real data) on a healthy system.
 */

export interface AlertOptions {
  /** Absolute URL of docs/operations.md as published; runbooks are its `#runbook-<alert>` anchors. */
  runbookBaseUrl: string;
  /** Grafana's base URL; dashboard links are `<base>/d/<uid>?var-namespace=<namespace>`. */
  grafanaUrl: string;
}

export const ALERT_DEFAULTS: Readonly<AlertOptions> = Object.freeze({
  runbookBaseUrl: 'https://github.com/openagents/openagents-sync/blob/main/docs/operations.md',
  grafanaUrl: 'http://localhost:3000',
});

/** `SYNC_RUNBOOK_BASE_URL` and `SYNC_GRAFANA_URL` override the defaults when regenerating. */
export function alertOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): AlertOptions {
  const pick = (name: string, fallback: string) => {
    const value = env[name]?.trim();
    if (!value) return fallback;
    if (!/^https?:\/\/\S+$/.test(value)) throw new Error(`${name} must be an absolute http(s) URL`);
    return value.replace(/\/+$/, '');
  };
  return {
    runbookBaseUrl: pick('SYNC_RUNBOOK_BASE_URL', ALERT_DEFAULTS.runbookBaseUrl),
    grafanaUrl: pick('SYNC_GRAFANA_URL', ALERT_DEFAULTS.grafanaUrl),
  };
}

export type Severity = 'critical' | 'warning' | 'info';
/** Dashboard uids (deploy/generate/dashboards.ts). */
export type DashboardUid = 'sync-overview' | 'sync-gateway' | 'sync-write-path' | 'sync-delta';

interface AlertSpec {
  alert: string;
  expr: string;
  for?: string;
  severity: Severity;
  dashboard: DashboardUid;
  summary: string;
  description?: string;
  /** Extra labels (e.g. `slo`). */
  labels?: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  rules: Record<string, unknown>[];
}

/* SLOs ---------------------------------------------------------------------------------------- */

/** Request routes that are probes or scrapes, never user traffic: out of every request ratio. */
export const OPS_ROUTES = 'route!~"/(healthz|readyz|metrics)"';

/**
 * A service level objective as a ratio of bad to all events. `bad` and `total` are PromQL
 * selectors of counters (without range); the burn-rate rules rate them over each window.
 */
export interface Slo {
  name: string;
  /** Target, e.g. 0.999: the error budget is 1 - objective over 30 days. */
  objective: number;
  description: string;
  /** Counter selector of bad events; `undefined` when bad = total - good. */
  bad?: string;
  /** Counter selector of good events (latency SLOs: the histogram bucket at the threshold). */
  good?: string;
  total: string;
  dashboard: DashboardUid;
}

export const SLOS: readonly Slo[] = [
  {
    name: 'write-availability',
    objective: 0.999,
    description: 'writes through the mutation workers that do not answer 5xx',
    bad: `sync_http_request_duration_seconds_count{job="sync-api", ${OPS_ROUTES}, status=~"5.."}`,
    total: `sync_http_request_duration_seconds_count{job="sync-api", ${OPS_ROUTES}}`,
    dashboard: 'sync-write-path',
  },
  {
    name: 'write-latency',
    objective: 0.99,
    description: 'writes answered within 250 ms',
    good: `sync_http_request_duration_seconds_bucket{job="sync-api", ${OPS_ROUTES}, le="0.25"}`,
    total: `sync_http_request_duration_seconds_count{job="sync-api", ${OPS_ROUTES}}`,
    dashboard: 'sync-write-path',
  },
  {
    name: 'delivery-latency',
    objective: 0.99,
    description: 'events written to live sockets within 1 s of their commit',
    good: 'sync_gateway_fanout_latency_seconds_bucket{le="1"}',
    total: 'sync_gateway_fanout_latency_seconds_count',
    dashboard: 'sync-gateway',
  },
  {
    name: 'resume-success',
    objective: 0.995,
    description: 'subscribes (fresh or resuming from a cursor) answered without an error',
    bad: 'sync_gateway_resumes_total{outcome="error"}',
    total: 'sync_gateway_resumes_total',
    dashboard: 'sync-gateway',
  },
];

/**
 * Multi-window, multi-burn-rate alerts (Google SRE workbook, ch. 5) for a 30-day budget: a long
 * window proves the burn is significant, a short one that it is still going on (so the alert
 * resets quickly once fixed). 14.4× over 1 h spends 2 % of the budget; 6× over 6 h, 5 %; both
 * page. 3× over 1 d and 1× over 3 d spend 10 % and are tickets.
 */
export const BURN_WINDOWS = [
  { long: '1h', short: '5m', factor: 14.4, severity: 'critical' },
  { long: '6h', short: '30m', factor: 6, severity: 'critical' },
  { long: '1d', short: '2h', factor: 3, severity: 'warning' },
  { long: '3d', short: '6h', factor: 1, severity: 'warning' },
] as const;

/** The SLO's error ratio over `window`, per namespace (0 on a healthy system, never empty). */
export function errorRatio(slo: Slo, window: string): string {
  const total = `sum by (namespace) (rate(${slo.total}[${window}]))`;
  const bad = slo.bad
    ? `(sum by (namespace) (rate(${slo.bad}[${window}])) or ${total} * 0)`
    : `(${total} - sum by (namespace) (rate(${slo.good}[${window}])))`;
  return `(${bad} / ${total})`;
}

function sloAlertName(slo: Slo): string {
  return `SyncSlo${slo.name.replace(/(^|-)(\w)/g, (_, __, c: string) => c.toUpperCase())}Burn`;
}

function sloAlerts(): AlertSpec[] {
  return SLOS.flatMap((slo) => {
    const budget = Number((1 - slo.objective).toFixed(6));
    const paging = BURN_WINDOWS.filter((w) => w.severity === 'critical');
    const ticket = BURN_WINDOWS.filter((w) => w.severity === 'warning');
    const condition = (windows: typeof paging | typeof ticket) =>
      windows
        .map(
          (w) =>
            `(${errorRatio(slo, w.long)} > ${w.factor} * ${budget} and ${errorRatio(slo, w.short)} > ${w.factor} * ${budget})`,
        )
        .join(' or ');
    const name = sloAlertName(slo);
    const objective = `${(slo.objective * 100).toFixed(1)} %`;
    return [
      {
        alert: name,
        expr: condition(paging),
        for: '2m',
        severity: 'critical',
        dashboard: slo.dashboard,
        labels: { slo: slo.name, window: 'fast' },
        summary: `{{ $labels.namespace }}: ${slo.name} SLO (${objective}) burning its 30-day budget fast`,
        description: `The ratio of ${slo.description} falls short of ${objective} at ≥ 6× the sustainable rate (1 h/5 m at 14.4× or 6 h/30 m at 6×).`,
      },
      {
        alert: `${name}Slow`,
        expr: condition(ticket),
        for: '1h',
        severity: 'warning',
        dashboard: slo.dashboard,
        labels: { slo: slo.name, window: 'slow' },
        summary: `{{ $labels.namespace }}: ${slo.name} SLO (${objective}) burning its budget steadily`,
        description: `The ratio of ${slo.description} falls short of ${objective} at ≥ 1× the sustainable rate over days (1 d/2 h at 3× or 3 d/6 h at 1×).`,
      },
    ];
  });
}

/* Symptom and cause alerts --------------------------------------------------------------------- */

const availability: AlertSpec[] = [
  {
    alert: 'SyncGatewayDown',
    expr: 'max by (namespace, instance) (up{job="sync-gateway"}) == 0',
    for: '2m',
    severity: 'warning',
    dashboard: 'sync-gateway',
    summary: 'Gateway {{ $labels.namespace }}/{{ $labels.instance }} is not answering /metrics',
    description:
      'Its clients reconnect to the other gateways: capacity, not data loss. Pages only when most are down.',
  },
  {
    alert: 'SyncGatewaysMostlyDown',
    expr: 'sum by (namespace) (up{job="sync-gateway"}) / count by (namespace) (up{job="sync-gateway"}) < 0.5',
    for: '2m',
    severity: 'critical',
    dashboard: 'sync-gateway',
    summary: '{{ $labels.namespace }}: fewer than half of the gateways answer',
    description: 'The remaining gateways carry every reconnecting client; live delivery is at risk.',
  },
  {
    alert: 'SyncServiceDown',
    expr: 'max by (namespace, job, instance) (up{job=~"sync-api|sync-delta"}) == 0',
    for: '2m',
    severity: 'warning',
    dashboard: 'sync-overview',
    summary: '{{ $labels.job }} {{ $labels.namespace }}/{{ $labels.instance }} is down',
    description:
      'Prometheus cannot scrape it: crashed, restarting, or unreachable. The other replicas take its traffic.',
  },
  {
    alert: 'SyncJobDown',
    expr: 'sum by (namespace, job) (up{job=~"sync-api|sync-delta|sync-gateway"}) == 0',
    for: '1m',
    severity: 'critical',
    dashboard: 'sync-overview',
    summary: '{{ $labels.namespace }}: no {{ $labels.job }} instance answers',
    description:
      'Every target of the job is down: writes (api), catch-ups (delta) or live delivery (gateway) stopped.',
  },
  {
    alert: 'SyncServiceNotReady',
    expr: 'max by (namespace, job, instance) (1 - sync_ready) == 1 and max by (namespace, job, instance) (sync_draining) == 0',
    for: '5m',
    severity: 'warning',
    dashboard: 'sync-overview',
    summary: '{{ $labels.job }} {{ $labels.namespace }}/{{ $labels.instance }} is up but not ready',
    description:
      'It answers /metrics but /readyz is 503 without draining: the process itself cannot serve (shared dependencies never cause this).',
  },
  {
    alert: 'SyncDependencyDown',
    expr: 'max by (namespace, job, dependency) (sync_dependency_up) == 0',
    for: '1m',
    severity: 'critical',
    dashboard: 'sync-overview',
    summary: '{{ $labels.namespace }}: no {{ $labels.job }} instance reaches {{ $labels.dependency }}',
    description:
      'A dependency every replica shares is down. Readiness stays 200 on purpose (contract §8): postgres stops writes and catch-ups, redis delays live events to head checks, delta stops catch-ups.',
  },
  {
    alert: 'SyncDependencyUnreachable',
    expr: 'min by (namespace, job, instance, dependency) (sync_dependency_up) == 0',
    for: '5m',
    severity: 'warning',
    dashboard: 'sync-overview',
    summary:
      '{{ $labels.job }} {{ $labels.namespace }}/{{ $labels.instance }} cannot reach {{ $labels.dependency }}',
    description:
      'One instance cannot reach a dependency the others reach: network policy, DNS, connection limits on that node.',
  },
  {
    alert: 'SyncEventLoopBlocked',
    expr: 'max by (namespace, job, instance) (sync_nodejs_eventloop_lag_p99_seconds) > 0.2',
    for: '5m',
    severity: 'warning',
    dashboard: 'sync-overview',
    summary:
      '{{ $labels.job }} {{ $labels.namespace }}/{{ $labels.instance }}: event loop p99 lag above 200 ms',
    description: 'The process is CPU-bound or blocked; latency will suffer.',
  },
];

const gateway: AlertSpec[] = [
  {
    alert: 'SyncBusFlapping',
    expr: 'sum by (namespace, instance) (increase(sync_gateway_bus_reconnects_total[15m])) > 3',
    severity: 'warning',
    dashboard: 'sync-gateway',
    summary:
      'Gateway {{ $labels.namespace }}/{{ $labels.instance }} re-subscribed to Redis {{ $value }} times in 15 min',
  },
  {
    alert: 'SyncGapFillsRising',
    expr: 'sum by (namespace, instance) (rate(sync_gateway_gap_fills_total[10m])) > 0.5',
    for: '10m',
    severity: 'warning',
    dashboard: 'sync-gateway',
    summary:
      'Gateway {{ $labels.namespace }}/{{ $labels.instance }} fills {{ $value | humanize }} gaps/s from the log',
    description: 'The bus is losing or reordering publishes; clients are still served, from Postgres.',
  },
  {
    alert: 'SyncSlowConsumerCloses',
    expr: 'sum by (namespace, instance) (rate(sync_gateway_slow_consumer_closes_total[5m])) > 0.1',
    for: '10m',
    severity: 'warning',
    dashboard: 'sync-gateway',
    summary:
      'Gateway {{ $labels.namespace }}/{{ $labels.instance }} closes slow clients (1013) at {{ $value | humanize }}/s',
  },
  {
    alert: 'SyncUpgradeUnauthorizedSpike',
    expr:
      '(sum by (namespace) (rate(sync_gateway_upgrades_total{result="unauthorized"}[5m])) or sum by (namespace) (rate(sync_gateway_upgrades_total[5m])) * 0)' +
      ' / sum by (namespace) (rate(sync_gateway_upgrades_total[5m])) > 0.5' +
      ' and sum by (namespace) (rate(sync_gateway_upgrades_total[5m])) > 0.2',
    for: '5m',
    severity: 'critical',
    dashboard: 'sync-gateway',
    summary: '{{ $labels.namespace }}: {{ $value | humanizePercentage }} of WebSocket upgrades answer 401',
    description:
      'Most clients cannot connect: usually SYNC_JWT_SECRET differs between the token issuer and the gateways (a half-rolled secret).',
  },
];

const writePath: AlertSpec[] = [
  {
    alert: 'SyncBusPublishFailures',
    expr: 'sum by (namespace, instance) (rate(sync_bus_publish_failures_total[5m])) > 0',
    for: '5m',
    severity: 'warning',
    dashboard: 'sync-write-path',
    summary: 'Worker {{ $labels.namespace }}/{{ $labels.instance }} fails to publish committed events',
    description:
      'Writes still succeed and the log has the events; gateways deliver them through head checks, later.',
  },
  {
    alert: 'SyncBusPublishSlow',
    expr: 'histogram_quantile(0.99, sum by (namespace, le) (rate(sync_bus_publish_duration_seconds_bucket[5m]))) > 0.25',
    for: '10m',
    severity: 'warning',
    dashboard: 'sync-write-path',
    summary: '{{ $labels.namespace }}: p99 bus publish takes {{ $value | humanizeDuration }}',
  },
  {
    alert: 'SyncHttpErrorRate',
    expr:
      `(sum by (namespace, job) (rate(sync_http_request_duration_seconds_count{${OPS_ROUTES}, status=~"5.."}[5m]))` +
      ` or sum by (namespace, job) (rate(sync_http_request_duration_seconds_count{${OPS_ROUTES}}[5m])) * 0)` +
      ` / sum by (namespace, job) (rate(sync_http_request_duration_seconds_count{${OPS_ROUTES}}[5m])) > 0.02`,
    for: '10m',
    severity: 'warning',
    dashboard: 'sync-overview',
    summary:
      '{{ $labels.namespace }} {{ $labels.job }}: {{ $value | humanizePercentage }} of requests fail with 5xx',
    description: 'A cause-level view per service (probes and scrapes excluded); the write SLO alerts page.',
  },
  {
    alert: 'SyncCommitLatencyHigh',
    expr: 'histogram_quantile(0.99, sum by (namespace, le) (rate(sync_commit_duration_seconds_bucket[5m]))) > 0.25',
    for: '10m',
    severity: 'warning',
    dashboard: 'sync-write-path',
    summary: '{{ $labels.namespace }}: p99 write transaction takes {{ $value | humanizeDuration }}',
  },
  {
    alert: 'SyncPgPoolSaturated',
    expr:
      'max by (namespace, job, instance) (sync_pg_pool_connections{state="total"})' +
      ' / max by (namespace, job, instance) (sync_pg_pool_connections{state="max"}) >= 0.9' +
      ' and max by (namespace, job, instance) (sync_pg_pool_connections{state="waiting"}) > 0',
    for: '5m',
    severity: 'warning',
    dashboard: 'sync-write-path',
    summary:
      '{{ $labels.job }} {{ $labels.namespace }}/{{ $labels.instance }}: Postgres pool full with requests waiting',
  },
];

const delta: AlertSpec[] = [
  {
    alert: 'SyncDeltaLatencyHigh',
    expr: 'histogram_quantile(0.99, sum by (namespace, le) (rate(sync_delta_duration_seconds_bucket[5m]))) > 0.5',
    for: '10m',
    severity: 'warning',
    dashboard: 'sync-delta',
    summary: '{{ $labels.namespace }}: p99 /sync/delta takes {{ $value | humanizeDuration }}',
  },
  {
    alert: 'SyncResetsRising',
    expr:
      '(sum by (namespace) (rate(sync_delta_requests_total{result="reset"}[15m]))' +
      ' or sum by (namespace) (rate(sync_delta_requests_total[15m])) * 0) > 0.1',
    for: '15m',
    severity: 'info',
    dashboard: 'sync-delta',
    summary:
      '{{ $labels.namespace }}: {{ $value | humanize }} catch-ups/s need a full reset (cursor older than retention)',
  },
  {
    alert: 'SyncPruneErrors',
    expr:
      '(sum by (namespace) (increase(sync_prune_runs_total{result="error"}[1h]))' +
      ' or sum by (namespace) (increase(sync_prune_runs_total[1h])) * 0) > 2',
    severity: 'warning',
    dashboard: 'sync-delta',
    summary: '{{ $labels.namespace }}: {{ $value | humanize }} pruning runs failed in the last hour',
    description:
      'Retention is not applied: the log and the idempotency keys grow without bound until it is fixed.',
  },
  {
    alert: 'SyncPruneStalled',
    expr:
      '(sum by (namespace) (increase(sync_prune_runs_total{result=~"ok|skipped"}[6h]))' +
      ' or sum by (namespace) (up{job="sync-delta"}) * 0) == 0' +
      ' and sum by (namespace) (up{job="sync-delta"}) > 0',
    severity: 'warning',
    dashboard: 'sync-delta',
    summary: '{{ $labels.namespace }}: no pruning run finished in 6 hours',
    description: 'The pruner is stuck (a long lock, a hung query) or failing: the log grows without bound.',
  },
];

/**
 * Kubernetes-only rules (kube-state-metrics and cAdvisor series). Checked by promtool (syntax and
 * `promtool test rules`), not by the stack test, which has no cluster.
 */
const kubernetes: AlertSpec[] = [
  {
    alert: 'SyncPodNotReady',
    expr: 'sum by (namespace, pod) (kube_pod_status_ready{condition="false", pod=~"sync-(api|delta|gateway)-.*"}) > 0',
    for: '10m',
    severity: 'warning',
    dashboard: 'sync-overview',
    summary: 'Pod {{ $labels.namespace }}/{{ $labels.pod }} has been unready for 10 minutes',
    description:
      'Starting, stuck draining, or its own checks fail (never a shared dependency: see SyncDependencyDown).',
  },
  {
    alert: 'SyncDeploymentReplicasUnavailable',
    expr: 'max by (namespace, deployment) (kube_deployment_status_replicas_unavailable{deployment=~"sync-(api|delta|gateway)"}) > 0',
    for: '15m',
    severity: 'warning',
    dashboard: 'sync-overview',
    summary: 'Deployment {{ $labels.namespace }}/{{ $labels.deployment }} is missing replicas',
  },
  {
    alert: 'SyncTargetsMissing',
    expr:
      'max by (namespace, deployment) (kube_deployment_spec_replicas{deployment=~"sync-(api|delta|gateway)"}) > 0' +
      ' unless on (namespace, deployment)' +
      ' label_replace(max by (namespace, job) (up{job=~"sync-(api|delta|gateway)"}), "deployment", "$1", "job", "(.*)")',
    for: '5m',
    severity: 'critical',
    dashboard: 'sync-overview',
    summary: '{{ $labels.namespace }}: Prometheus scrapes no target of {{ $labels.deployment }}',
    description:
      'The Deployment wants replicas but no target exists: every pod is gone, or the ServiceMonitor stopped matching (labels, `release`). Every other alert of this job is blind.',
  },
  {
    alert: 'SyncMigrationFailed',
    expr: 'max by (namespace, pod) (kube_pod_init_container_status_waiting_reason{container="migrate", reason="CrashLoopBackOff", pod=~"sync-(api|delta)-.*"}) > 0',
    for: '5m',
    severity: 'warning',
    dashboard: 'sync-overview',
    summary: '{{ $labels.namespace }}/{{ $labels.pod }}: the migration init container keeps failing',
    description: 'The rollout is stalled (maxUnavailable 0): the old pods keep serving on the old schema.',
  },
  {
    alert: 'SyncMemoryNearLimit',
    expr:
      'max by (namespace, pod, container) (container_memory_working_set_bytes{container=~"api|delta|gateway", pod=~"sync-.*"})' +
      ' / max by (namespace, pod, container) (kube_pod_container_resource_limits{resource="memory", container=~"api|delta|gateway", pod=~"sync-.*"}) > 0.9',
    for: '10m',
    severity: 'warning',
    dashboard: 'sync-overview',
    summary:
      '{{ $labels.namespace }}/{{ $labels.pod }}: memory at {{ $value | humanizePercentage }} of its limit',
    description: 'The kernel OOM-kills the container at the limit; a gateway takes its sockets with it.',
  },
  {
    alert: 'SyncHpaAtMaximum',
    expr:
      'max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_status_current_replicas{horizontalpodautoscaler=~"sync-.*"})' +
      ' >= max by (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas{horizontalpodautoscaler=~"sync-.*"})',
    for: '15m',
    severity: 'warning',
    dashboard: 'sync-overview',
    summary:
      '{{ $labels.namespace }}: HPA {{ $labels.horizontalpodautoscaler }} has been at its maximum for 15 minutes',
    description:
      'It cannot scale further: latency SLOs are next. Raise maxReplicas within the Postgres connection budget.',
  },
];

/**
 * Compose-only watchdogs: with static targets every series carries `namespace="compose"` (set in
 * prometheus.yml), so `absent()` can name the namespace. Under Kubernetes, SyncTargetsMissing
 * does this from kube-state-metrics, which knows which Deployments should have targets.
 */
function composeWatchdogs(namespace: string): AlertSpec[] {
  const absent = ['sync-api', 'sync-delta', 'sync-gateway'].map(
    (job) => `absent(up{job="${job}", namespace="${namespace}"})`,
  );
  return [
    {
      alert: 'SyncTargetsAbsent',
      expr: absent.join(' or '),
      for: '5m',
      severity: 'critical',
      dashboard: 'sync-overview',
      summary: `{{ $labels.namespace }}: Prometheus has no {{ $labels.job }} target at all`,
      description: 'Scrape config or service discovery lost the job: every other alert of it is blind.',
    },
  ];
}

/* Rendering ------------------------------------------------------------------------------------ */

export function renderRule(spec: AlertSpec, options: AlertOptions): Record<string, unknown> {
  const runbook = `${options.runbookBaseUrl}#runbook-${spec.alert.toLowerCase()}`;
  return {
    alert: spec.alert,
    expr: spec.expr,
    ...(spec.for ? { for: spec.for } : {}),
    labels: { severity: spec.severity, ...spec.labels },
    annotations: {
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      runbook_url: runbook,
      dashboard_url: `${options.grafanaUrl}/d/${spec.dashboard}?var-namespace={{ $labels.namespace }}`,
    },
  };
}

const group = (name: string, specs: AlertSpec[], options: AlertOptions): RuleGroup => ({
  name,
  rules: specs.map((s) => renderRule(s, options)),
});

/** The groups shared by compose (alerts.yml) and Kubernetes (the PrometheusRule). */
export function commonGroups(options: AlertOptions = ALERT_DEFAULTS): RuleGroup[] {
  return [
    group('sync-slo', sloAlerts(), options),
    group('sync-availability', availability, options),
    group('sync-gateway', gateway, options),
    group('sync-write-path', writePath, options),
    group('sync-delta', delta, options),
  ];
}

export function kubernetesGroup(options: AlertOptions = ALERT_DEFAULTS): RuleGroup {
  return group('sync-kubernetes', kubernetes, options);
}

export function composeWatchdogGroup(
  options: AlertOptions = ALERT_DEFAULTS,
  namespace = 'compose',
): RuleGroup {
  return group('sync-compose-watchdog', composeWatchdogs(namespace), options);
}
