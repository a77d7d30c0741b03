/**
 * The Grafana dashboards as code. `node --import tsx deploy/generate/main.ts` writes them to
 * deploy/grafana/dashboards/*.json; test/ops checks the committed JSON matches this source and
 * queries every expression against a real Prometheus scraping the real services.
 *
 * Model: Grafana 10+ dashboard JSON (schemaVersion 39), panels of type `timeseries` and `stat`,
 * every panel and query bound to the `${datasource}` variable (type `datasource`, Prometheus), so
 * a dashboard imports into any Grafana without editing datasource uids.
 *
 * Every dashboard has `namespace` (one environment at a time: `sync-dev` and `sync` never merge),
 * `job` and `instance` variables; every metric selector of every query is scoped to them by
 * {@link scoped}, so no query can forget. The first row answers "is it healthy?" in ten seconds;
 * the annotations mark restarts and new builds.
 */

import { errorRatio, SLOS } from './alerts';

/** One query of a panel. `legend` is Grafana's legendFormat. */
export interface Query {
  expr: string;
  legend?: string;
}

interface PanelSpec {
  title: string;
  type: 'timeseries' | 'stat' | 'row';
  queries: Query[];
  unit?: string;
  description?: string;
  /** Width in grid columns (24 per row); height is fixed per type. */
  w?: number;
  thresholds?: { color: string; value: number | null }[];
  /** Scoped to the namespace only, whatever job and instance are chosen (the health row). */
  wholeNamespace?: boolean;
}

interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  panels: PanelSpec[];
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own variable syntax, not a JS template.
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;
const RATE = '$__rate_interval';

/** The matchers {@link scoped} adds to every selector: the dashboard's variables. */
export const SCOPE_MATCHERS = 'namespace="$namespace", job=~"$job", instance=~"$instance"';

/**
 * Adds the dashboard variables to every metric selector of a query (`sync_*` and `up`), so every
 * panel shows one namespace and the chosen jobs and instances.
 *   scoped('sum(rate(sync_x{a="b"}[5m]))') → 'sum(rate(sync_x{a="b", namespace="$namespace", …}[5m]))'
 */
export function scoped(expr: string, matchers = SCOPE_MATCHERS): string {
  return expr.replace(
    /\b(sync_[a-z0-9_]+|up)\b(?!\s*\()(\{([^}]*)\})?/g,
    (_m, name: string, _b, labels?: string) =>
      labels?.trim() ? `${name}{${labels}, ${matchers}}` : `${name}{${matchers}}`,
  );
}

function row(title: string): PanelSpec {
  return { title, type: 'row', queries: [], w: 24 };
}

function stat(title: string, expr: string, unit: string, extra: Partial<PanelSpec> = {}): PanelSpec {
  return { title, type: 'stat', queries: [{ expr }], unit, w: 4, ...extra };
}

function series(title: string, queries: Query[], unit: string, extra: Partial<PanelSpec> = {}): PanelSpec {
  return { title, type: 'timeseries', queries, unit, w: 12, ...extra };
}

function quantiles(metric: string, by = ''): Query[] {
  const group = by ? `${by}, le` : 'le';
  const legendPrefix = by ? `{{${by}}} ` : '';
  return [0.5, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (${group}) (rate(${metric}_bucket[${RATE}])))`,
    legend: `${legendPrefix}p${q * 100}`,
  }));
}

const GREEN_RED = [
  { color: 'green', value: null },
  { color: 'red', value: 1 },
];
const RED_GREEN = [
  { color: 'red', value: null },
  { color: 'green', value: 1 },
];

const HTTP_5XX_RATIO = (job: string) =>
  `(sum(rate(sync_http_request_duration_seconds_count{job="${job}",status=~"5.."}[${RATE}])) ` +
  `or sum(rate(sync_http_request_duration_seconds_count{job="${job}"}[${RATE}])) * 0) ` +
  `/ sum(rate(sync_http_request_duration_seconds_count{job="${job}"}[${RATE}]))`;

/** 1 - the SLO's error ratio over the last hour (from the same expression as its alerts). */
const sloGood = (name: string) => `1 - ${errorRatio(SLOS.find((s) => s.name === name)!, '1h')}`;

/**
 * The first row of every dashboard: what an on-call reads in ten seconds. Red means act: a
 * critical alert firing, a target or a dependency down, an SLO under its objective.
 */
const HEALTH_ROW: PanelSpec[] = [
  row('Is it healthy?'),
  stat(
    'Critical alerts firing',
    'count(ALERTS{alertstate="firing", severity="critical", namespace="$namespace"}) or vector(0)',
    'short',
    { wholeNamespace: true, w: 3, thresholds: GREEN_RED },
  ),
  stat('Targets up', 'sum(up{job=~"sync-.*"}) / count(up{job=~"sync-.*"})', 'percentunit', {
    wholeNamespace: true,
    w: 3,
    thresholds: [
      { color: 'red', value: null },
      { color: 'orange', value: 0.5 },
      { color: 'green', value: 1 },
    ],
  }),
  stat('All ready', 'min(sync_ready)', 'short', { wholeNamespace: true, w: 3, thresholds: RED_GREEN }),
  stat('Dependencies up', 'min(sync_dependency_up)', 'short', {
    wholeNamespace: true,
    w: 3,
    thresholds: RED_GREEN,
    description: 'Postgres, Redis and delta as every process sees them (not part of readiness).',
  }),
  stat('Writes OK (1h)', sloGood('write-availability'), 'percentunit', {
    wholeNamespace: true,
    w: 3,
    thresholds: sloThresholds(0.999),
  }),
  stat('Delivered ≤ 1 s (1h)', sloGood('delivery-latency'), 'percentunit', {
    wholeNamespace: true,
    w: 3,
    thresholds: sloThresholds(0.99),
  }),
  stat('Subscribes OK (1h)', sloGood('resume-success'), 'percentunit', {
    wholeNamespace: true,
    w: 3,
    thresholds: sloThresholds(0.995),
  }),
  stat('Draining', 'sum(sync_draining)', 'short', { wholeNamespace: true, w: 3 }),
  row('Details'),
];

function sloThresholds(objective: number) {
  return [
    { color: 'red', value: null },
    { color: 'green', value: objective },
  ];
}

const PROCESS_PANELS = (job: string): PanelSpec[] => [
  row('Processes'),
  series(
    'CPU (what the HPA scales on)',
    [
      {
        expr: `sum by (instance) (rate(sync_process_cpu_seconds_total{job="${job}"}[${RATE}]))`,
        legend: '{{instance}}',
      },
    ],
    'percentunit',
    { w: 8, description: 'Cores used per instance (1 = one core); compare with the container request.' },
  ),
  series(
    'Event loop lag p99',
    [{ expr: `sync_nodejs_eventloop_lag_p99_seconds{job="${job}"}`, legend: '{{instance}}' }],
    's',
    { w: 8 },
  ),
  series(
    'Ready / draining',
    [
      { expr: `sync_ready{job="${job}"}`, legend: 'ready {{instance}}' },
      { expr: `sync_draining{job="${job}"}`, legend: 'draining {{instance}}' },
    ],
    'short',
    { w: 8 },
  ),
  series(
    'Memory: resident and V8 heap',
    [
      { expr: `sync_process_resident_memory_bytes{job="${job}"}`, legend: 'rss {{instance}}' },
      { expr: `sync_nodejs_heap_size_used_bytes{job="${job}"}`, legend: 'heap used {{instance}}' },
      { expr: `sync_nodejs_heap_size_total_bytes{job="${job}"}`, legend: 'heap total {{instance}}' },
    ],
    'bytes',
    { w: 8 },
  ),
  series(
    'GC time per second',
    [
      {
        expr: `sum by (instance, kind) (rate(sync_nodejs_gc_duration_seconds_sum{job="${job}"}[${RATE}]))`,
        legend: '{{kind}} {{instance}}',
      },
    ],
    'percentunit',
    { w: 8 },
  ),
  series(
    'File descriptors',
    [
      { expr: `sync_process_open_fds{job="${job}"}`, legend: 'open {{instance}}' },
      { expr: `sync_process_max_fds{job="${job}"}`, legend: 'limit {{instance}}' },
    ],
    'short',
    { w: 8 },
  ),
  series(
    'Builds running',
    [
      {
        expr: `count by (version, commit) (sync_build_info{job="${job}"})`,
        legend: '{{version}} {{commit}}',
      },
    ],
    'short',
    { w: 8, description: 'Instances per build: two lines during a rollout, one after.' },
  ),
];

const POOL_PANEL = (job: string): PanelSpec =>
  series(
    'Postgres pool',
    [{ expr: `sum by (state) (sync_pg_pool_connections{job="${job}"})`, legend: '{{state}}' }],
    'short',
    { description: 'Connections in the pools of all instances by state; waiting > 0 means saturation.' },
  );

export const DASHBOARDS: DashboardSpec[] = [
  {
    uid: 'sync-overview',
    title: 'OpenAgents Sync / Overview',
    description: 'Health of the whole stack at a glance: targets, connections, writes, delivery.',
    panels: [
      ...HEALTH_ROW,
      stat('Gateways up', 'sum(up{job="sync-gateway"})', 'short', { thresholds: RED_GREEN }),
      stat('Workers up', 'sum(up{job="sync-api"})', 'short', { thresholds: RED_GREEN }),
      stat('Delta up', 'sum(up{job="sync-delta"})', 'short', { thresholds: RED_GREEN }),
      stat('Connections', 'sum(sync_gateway_connections)', 'short'),
      stat('Bus subscriptions healthy', 'min(sync_gateway_bus_up)', 'short', { thresholds: RED_GREEN }),
      stat('Writes/s', `sum(rate(sync_mutations_total{result="ok"}[${RATE}]))`, 'ops'),
      series(
        'Writes/s by model',
        [{ expr: `sum by (model) (rate(sync_mutations_total[${RATE}]))`, legend: '{{model}}' }],
        'ops',
      ),
      series(
        'Events delivered/s (all sockets)',
        [
          { expr: `sum(rate(sync_gateway_events_delivered_total[${RATE}]))`, legend: 'delivered' },
          { expr: `sum(rate(sync_gateway_bus_events_received_total[${RATE}]))`, legend: 'from bus' },
        ],
        'ops',
      ),
      series('Commit → socket latency', quantiles('sync_gateway_fanout_latency_seconds'), 's'),
      series(
        'HTTP p99 by service',
        [
          {
            expr: `histogram_quantile(0.99, sum by (job, le) (rate(sync_http_request_duration_seconds_bucket[${RATE}])))`,
            legend: '{{job}}',
          },
        ],
        's',
      ),
      series(
        '5xx ratio',
        [
          { expr: HTTP_5XX_RATIO('sync-api'), legend: 'api' },
          { expr: HTTP_5XX_RATIO('sync-delta'), legend: 'delta' },
        ],
        'percentunit',
      ),
      series('Targets up', [{ expr: 'sum by (job) (up{job=~"sync-.*"})', legend: '{{job}}' }], 'short'),
    ],
  },
  {
    uid: 'sync-gateway',
    title: 'OpenAgents Sync / Gateways',
    description: 'WebSocket gateways: connections, fan-out, gap fills, resumes, bus health.',
    panels: [
      ...HEALTH_ROW,
      stat('Connections', 'sum(sync_gateway_connections)', 'short'),
      stat('Subscriptions', 'sum(sync_gateway_subscriptions)', 'short'),
      stat('Active scopes', 'sum(sync_gateway_active_scopes)', 'short'),
      stat('Bus up (min)', 'min(sync_gateway_bus_up)', 'short', { thresholds: RED_GREEN }),
      stat(
        'Slow-consumer closes (1h)',
        'sum(increase(sync_gateway_slow_consumer_closes_total[1h]))',
        'short',
        {
          thresholds: GREEN_RED,
        },
      ),
      stat('Bus reconnects (1h)', 'sum(increase(sync_gateway_bus_reconnects_total[1h]))', 'short', {
        thresholds: GREEN_RED,
      }),
      series(
        'Connections by gateway',
        [{ expr: 'sync_gateway_connections', legend: '{{instance}}' }],
        'short',
      ),
      series(
        'Subscriptions and scopes by gateway',
        [
          { expr: 'sync_gateway_subscriptions', legend: 'subscriptions {{instance}}' },
          { expr: 'sync_gateway_active_scopes', legend: 'scopes {{instance}}' },
        ],
        'short',
      ),
      series(
        'Events in and out',
        [
          {
            expr: `sum by (instance) (rate(sync_gateway_bus_events_received_total[${RATE}]))`,
            legend: 'from bus {{instance}}',
          },
          {
            expr: `sum by (instance) (rate(sync_gateway_events_delivered_total[${RATE}]))`,
            legend: 'delivered {{instance}}',
          },
        ],
        'ops',
      ),
      series('Commit → socket latency', quantiles('sync_gateway_fanout_latency_seconds'), 's'),
      series(
        'Gap fills by reason',
        [{ expr: `sum by (reason) (rate(sync_gateway_gap_fills_total[${RATE}]))`, legend: '{{reason}}' }],
        'ops',
        { description: 'Reads of the log that filled events the bus did not bring (or not in order).' },
      ),
      series(
        'Resumes by outcome',
        [{ expr: `sum by (outcome) (rate(sync_gateway_resumes_total[${RATE}]))`, legend: '{{outcome}}' }],
        'ops',
      ),
      series(
        'Duplicates dropped',
        [{ expr: `sum(rate(sync_gateway_duplicates_dropped_total[${RATE}]))`, legend: 'dropped' }],
        'ops',
      ),
      series(
        'Frames sent by type',
        [{ expr: `sum by (type) (rate(sync_gateway_frames_sent_total[${RATE}]))`, legend: '{{type}}' }],
        'ops',
      ),
      series(
        'Frames received by type',
        [{ expr: `sum by (type) (rate(sync_gateway_frames_received_total[${RATE}]))`, legend: '{{type}}' }],
        'ops',
      ),
      series(
        'Error frames by code',
        [{ expr: `sum by (code) (rate(sync_gateway_frame_errors_total[${RATE}]))`, legend: '{{code}}' }],
        'ops',
      ),
      series(
        'Upgrades by result',
        [{ expr: `sum by (result) (rate(sync_gateway_upgrades_total[${RATE}]))`, legend: '{{result}}' }],
        'ops',
      ),
      series(
        'Bytes sent',
        [
          {
            expr: `sum by (instance) (rate(sync_gateway_bytes_sent_total[${RATE}]))`,
            legend: '{{instance}}',
          },
        ],
        'Bps',
      ),
      series(
        'Reads from the delta service',
        [
          {
            expr: `sum by (kind, result) (rate(sync_gateway_delta_requests_total[${RATE}]))`,
            legend: '{{kind}} {{result}}',
          },
        ],
        'ops',
      ),
      series('Bus subscription up', [{ expr: 'sync_gateway_bus_up', legend: '{{instance}}' }], 'short'),
      series(
        'Disconnects by close code',
        [{ expr: `sum by (code) (rate(sync_gateway_disconnects_total[${RATE}]))`, legend: '{{code}}' }],
        'ops',
        {
          description:
            '1000/1005 client left, 1006 dropped without a close, 1008 token expired, 1009 frame too big, 1011 server error, 1012 drain, 1013 slow consumer.',
        },
      ),
      series('Connection lifetime', quantiles('sync_gateway_connection_duration_seconds'), 's'),
      series(
        'Send buffers',
        [
          {
            expr: 'sum by (instance) (sync_gateway_send_buffer_bytes{stat="sum"})',
            legend: 'all sockets {{instance}}',
          },
          {
            expr: 'max by (instance) (sync_gateway_send_buffer_bytes{stat="max"})',
            legend: 'largest {{instance}}',
          },
        ],
        'bytes',
        {
          description:
            'Bytes queued for clients; the largest approaches MAX_BACKPRESSURE_BYTES before a 1013.',
        },
      ),
      ...PROCESS_PANELS('sync-gateway'),
    ],
  },
  {
    uid: 'sync-write-path',
    title: 'OpenAgents Sync / Write path',
    description: 'Mutation workers: requests, mutations, commit and publish latency, Postgres pool.',
    panels: [
      ...HEALTH_ROW,
      stat('Writes/s', `sum(rate(sync_mutations_total{result="ok"}[${RATE}]))`, 'ops'),
      stat(
        'Commit p99',
        `histogram_quantile(0.99, sum by (le) (rate(sync_commit_duration_seconds_bucket[${RATE}])))`,
        's',
      ),
      stat('Publish failures (1h)', 'sum(increase(sync_bus_publish_failures_total[1h]))', 'short', {
        thresholds: GREEN_RED,
      }),
      stat('5xx ratio', HTTP_5XX_RATIO('sync-api'), 'percentunit'),
      stat('Idempotent replays/s', `sum(rate(sync_idempotent_replays_total[${RATE}]))`, 'ops'),
      stat('Rate limited/s', `sum(rate(sync_rate_limited_total[${RATE}]))`, 'ops'),
      series(
        'Mutations by model and action',
        [
          {
            expr: `sum by (model, action) (rate(sync_mutations_total[${RATE}]))`,
            legend: '{{model}} {{action}}',
          },
        ],
        'ops',
      ),
      series(
        'Mutations by result',
        [{ expr: `sum by (result) (rate(sync_mutations_total[${RATE}]))`, legend: '{{result}}' }],
        'ops',
      ),
      series('Commit duration', quantiles('sync_commit_duration_seconds'), 's'),
      series('Bus publish duration', quantiles('sync_bus_publish_duration_seconds'), 's'),
      series(
        'Requests by status',
        [
          {
            expr: `sum by (status) (rate(sync_http_request_duration_seconds_count{job="sync-api"}[${RATE}]))`,
            legend: '{{status}}',
          },
        ],
        'reqps',
      ),
      series(
        'Request p99 by route',
        [
          {
            expr: `histogram_quantile(0.99, sum by (route, le) (rate(sync_http_request_duration_seconds_bucket{job="sync-api"}[${RATE}])))`,
            legend: '{{route}}',
          },
        ],
        's',
      ),
      POOL_PANEL('sync-api'),
      ...PROCESS_PANELS('sync-api'),
    ],
  },
  {
    uid: 'sync-delta',
    title: 'OpenAgents Sync / Delta service',
    description: 'Bootstrap snapshots, delta pages, head checks and log retention.',
    panels: [
      ...HEALTH_ROW,
      stat('Delta requests/s', `sum(rate(sync_delta_requests_total[${RATE}]))`, 'reqps'),
      stat('Bootstraps/s', `sum(rate(sync_bootstrap_requests_total[${RATE}]))`, 'reqps'),
      stat('Head checks/s', `sum(rate(sync_heads_requests_total[${RATE}]))`, 'reqps'),
      stat('Events pruned (24h)', 'sum(increase(sync_events_pruned_total[24h]))', 'short'),
      series(
        'Delta requests by result',
        [{ expr: `sum by (result) (rate(sync_delta_requests_total[${RATE}]))`, legend: '{{result}}' }],
        'reqps',
      ),
      series('Delta duration', quantiles('sync_delta_duration_seconds'), 's'),
      series(
        'Reads by source (postgres, or shared between gateways)',
        [
          {
            expr: `sum by (kind, source) (rate(sync_delta_reads_total[${RATE}]))`,
            legend: '{{kind}} {{source}}',
          },
        ],
        'ops',
      ),
      series(
        'Events per delta page',
        [
          {
            expr: `histogram_quantile(0.5, sum by (le) (rate(sync_delta_events_returned_bucket[${RATE}])))`,
            legend: 'p50',
          },
          {
            expr: `histogram_quantile(0.99, sum by (le) (rate(sync_delta_events_returned_bucket[${RATE}])))`,
            legend: 'p99',
          },
        ],
        'short',
      ),
      series(
        'Bootstraps by result',
        [{ expr: `sum by (result) (rate(sync_bootstrap_requests_total[${RATE}]))`, legend: '{{result}}' }],
        'reqps',
      ),
      series('Bootstrap duration', quantiles('sync_bootstrap_duration_seconds'), 's'),
      series(
        'Records per bootstrap',
        [
          {
            expr: `histogram_quantile(0.5, sum by (le) (rate(sync_bootstrap_records_bucket[${RATE}])))`,
            legend: 'p50',
          },
          {
            expr: `histogram_quantile(0.99, sum by (le) (rate(sync_bootstrap_records_bucket[${RATE}])))`,
            legend: 'p99',
          },
        ],
        'short',
      ),
      series(
        'Head checks by result',
        [{ expr: `sum by (result) (rate(sync_heads_requests_total[${RATE}]))`, legend: '{{result}}' }],
        'reqps',
      ),
      series(
        'Retention',
        [
          { expr: `sum(rate(sync_events_pruned_total[${RATE}]))`, legend: 'events pruned/s' },
          {
            expr: `sum(rate(sync_idempotency_keys_pruned_total[${RATE}]))`,
            legend: 'idempotency keys pruned/s',
          },
          { expr: `sum by (result) (rate(sync_prune_runs_total[${RATE}]))`, legend: 'runs {{result}}' },
        ],
        'ops',
      ),
      series('Prune run duration', quantiles('sync_prune_duration_seconds'), 's'),
      ...PROCESS_PANELS('sync-delta'),
    ],
  },
];

/** Lays panels out left to right, wrapping at 24 columns; stats are short, series are tall. */
function layout(panels: PanelSpec[]) {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  return panels.map((spec, index) => {
    const w = spec.w ?? 12;
    const h = spec.type === 'row' ? 1 : spec.type === 'stat' ? 4 : 8;
    if (x + w > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const gridPos = { h, w, x, y };
    x += w;
    rowHeight = Math.max(rowHeight, h);
    return panelJson(spec, index + 1, gridPos);
  });
}

function panelJson(spec: PanelSpec, id: number, gridPos: { h: number; w: number; x: number; y: number }) {
  if (spec.type === 'row')
    return { id, type: 'row', title: spec.title, collapsed: false, gridPos, panels: [] };
  const targets = spec.queries.map((q, i) => ({
    datasource: DATASOURCE,
    editorMode: 'code',
    expr: scoped(q.expr, spec.wholeNamespace ? 'namespace="$namespace"' : SCOPE_MATCHERS),
    legendFormat: q.legend ?? '__auto',
    range: true,
    refId: String.fromCharCode(65 + i),
  }));
  const thresholds = {
    mode: 'absolute',
    steps: spec.thresholds ?? [{ color: 'green', value: null }],
  };
  const base = {
    id,
    type: spec.type,
    title: spec.title,
    description: spec.description ?? '',
    datasource: DATASOURCE,
    gridPos,
    targets,
  };
  if (spec.type === 'stat') {
    return {
      ...base,
      fieldConfig: {
        defaults: { unit: spec.unit ?? 'short', thresholds, color: { mode: 'thresholds' } },
        overrides: [],
      },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: 'value',
        graphMode: 'area',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: 'auto',
      },
    };
  }
  return {
    ...base,
    fieldConfig: {
      defaults: {
        unit: spec.unit ?? 'short',
        thresholds,
        color: { mode: 'palette-classic' },
        custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: 10, showPoints: 'never', spanNulls: false },
      },
      overrides: [],
    },
    options: {
      legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  };
}

/**
 * Deploys and restarts as annotations: a process start (a new pod, a crash, a rollout step) and a
 * build that was not running ten minutes before (a new version reaching the namespace).
 */
export const DEPLOY_ANNOTATIONS = [
  {
    name: 'Restarts',
    color: 'orange',
    expr: scoped('changes(sync_process_start_time_seconds[2m]) > 0'),
    title: 'restart',
    text: '{{job}} {{instance}}',
  },
  {
    name: 'New builds',
    color: 'purple',
    expr:
      'count by (job, version, commit) (sync_build_info{namespace="$namespace"})' +
      ' unless count by (job, version, commit) (sync_build_info{namespace="$namespace"} offset 10m)',
    title: 'deploy',
    text: '{{job}} {{version}} {{commit}}',
  },
];

/** A query variable over Prometheus label values; multi-valued ones have All (`.*`). */
function queryVariable(name: string, label: string, query: string, multi: boolean) {
  return {
    current: {},
    datasource: DATASOURCE,
    definition: query,
    hide: 0,
    includeAll: multi,
    ...(multi ? { allValue: '.*' } : {}),
    label,
    multi,
    name,
    options: [],
    query: { query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    refresh: 2,
    regex: '',
    skipUrlSync: false,
    sort: 1,
    type: 'query',
  };
}

/** The JSON model of one dashboard, ready for the file provider or Grafana's import. */
export function dashboardJson(spec: DashboardSpec) {
  return {
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
        ...DEPLOY_ANNOTATIONS.map((a) => ({
          datasource: DATASOURCE,
          enable: true,
          hide: false,
          iconColor: a.color,
          name: a.name,
          expr: a.expr,
          step: '1m',
          titleFormat: a.title,
          textFormat: a.text,
          useValueForTime: false,
        })),
      ],
    },
    description: spec.description,
    editable: true,
    fiscalYearStartMonth: 0,
    graphTooltip: 1,
    id: null,
    links: [
      {
        asDropdown: false,
        icon: 'external link',
        tags: ['openagents-sync'],
        title: 'Sync',
        type: 'dashboards',
      },
    ],
    panels: layout(spec.panels),
    refresh: '10s',
    schemaVersion: 39,
    tags: ['openagents-sync'],
    templating: {
      list: [
        {
          current: {},
          hide: 0,
          includeAll: false,
          label: 'Data source',
          multi: false,
          name: 'datasource',
          options: [],
          query: 'prometheus',
          refresh: 1,
          regex: '',
          skipUrlSync: false,
          type: 'datasource',
        },
        queryVariable('namespace', 'Namespace', 'label_values(up{job=~"sync-.*"}, namespace)', false),
        queryVariable('job', 'Job', 'label_values(up{namespace="$namespace", job=~"sync-.*"}, job)', true),
        queryVariable(
          'instance',
          'Instance',
          'label_values(up{namespace="$namespace", job=~"$job"}, instance)',
          true,
        ),
      ],
    },
    time: { from: 'now-1h', to: 'now' },
    timepicker: {},
    timezone: '',
    title: spec.title,
    uid: spec.uid,
    version: 1,
    weekStart: '',
  };
}

/** File name → file content (pretty JSON with a trailing newline) of every dashboard. */
export function renderDashboards(): Map<string, string> {
  return new Map(DASHBOARDS.map((d) => [`${d.uid}.json`, `${JSON.stringify(dashboardJson(d), null, 2)}\n`]));
}
