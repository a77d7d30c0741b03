import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { alertOptionsFromEnv } from './alerts';
import { renderDashboards } from './dashboards';
import {
  ALERTS_FILE,
  KUBERNETES_ALERTS_FILE,
  renderAlertsFile,
  renderKubernetesAlertsFile,
  renderPrometheusRule,
} from './prometheus-rule';

// Regenerates the derived deployment files: the Grafana dashboards JSON, the Prometheus rule files
// and the k8s PrometheusRule. SYNC_RUNBOOK_BASE_URL and SYNC_GRAFANA_URL set the absolute links
// every alert carries (defaults in deploy/generate/alerts.ts).
//   node --import tsx deploy/generate/main.ts
const options = alertOptionsFromEnv();
const dashboardsDir = fileURLToPath(new URL('../grafana/dashboards/', import.meta.url));
mkdirSync(dashboardsDir, { recursive: true });
for (const [name, json] of renderDashboards()) writeFileSync(dashboardsDir + name, json);
writeFileSync(ALERTS_FILE, renderAlertsFile(options));
writeFileSync(KUBERNETES_ALERTS_FILE, renderKubernetesAlertsFile(options));
writeFileSync(
  fileURLToPath(new URL('../../k8s/base/prometheusrule.yaml', import.meta.url)),
  renderPrometheusRule(options),
);
process.stdout.write('dashboards, alert rules and prometheusrule.yaml written\n');
