import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderDashboards } from './dashboards';
import { renderPrometheusRule } from './prometheus-rule';

// Regenerates the derived deployment files: the Grafana dashboards JSON and the k8s PrometheusRule.
//   node --import tsx deploy/generate/main.ts
const dashboardsDir = fileURLToPath(new URL('../grafana/dashboards/', import.meta.url));
mkdirSync(dashboardsDir, { recursive: true });
for (const [name, json] of renderDashboards()) writeFileSync(dashboardsDir + name, json);
writeFileSync(
  fileURLToPath(new URL('../../k8s/base/prometheusrule.yaml', import.meta.url)),
  renderPrometheusRule(),
);
process.stdout.write('dashboards and prometheusrule.yaml written\n');
