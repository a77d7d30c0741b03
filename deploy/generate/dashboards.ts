/**
 * The Grafana dashboards as code. `node --import tsx deploy/generate/main.ts` writes them to
 * deploy/grafana/dashboards/*.json; test/ops checks the committed JSON matches this source and
 * queries every expression against a real Prometheus scraping the real services.
 *
 * Model: Grafana 10+ dashboard JSON (schemaVersion 39), panels of type `timeseries` and `stat`,
 * every panel and query bound to the `${datasource}` variable (type `datasource`, Prometheus), so
 * a dashboard imports into any Grafana without editing datasource uids.
 */

/** One query of a panel. `legend` is Grafana's legendFormat. */
export interface Query {
  expr: string;
  legend?: string;
}

interface PanelSpec {
  title: string;
  type: 'timeseries' | 'stat';
  queries: Query[];
  unit?: string;
  description?: string;
  /** Width in grid columns (24 per row); height is fixed per type. */
  w?: number;
  thresholds?: { color: string; value: number | null }[];
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

const PROCESS_PANELS = (job: string): PanelSpec[] => [
  series(
    'Event loop lag p99',
    [{ expr: `sync_nodejs_eventloop_lag_p99_seconds{job="${job}"}`, legend: '{{instance}}' }],
    's',
  ),
  series(
    'Resident memory',
    [{ expr: `sync_process_resident_memory_bytes{job="${job}"}`, legend: '{{instance}}' }],
    'bytes',
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
      ...PROCESS_PANELS('sync-gateway'),
    ],
  },
  {
    uid: 'sync-write-path',
    title: 'OpenAgents Sync / Write path',
    description: 'Mutation workers: requests, mutations, commit and publish latency, Postgres pool.',
    panels: [
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
    const h = spec.type === 'stat' ? 4 : 8;
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
  const targets = spec.queries.map((q, i) => ({
    datasource: DATASOURCE,
    editorMode: 'code',
    expr: q.expr,
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
