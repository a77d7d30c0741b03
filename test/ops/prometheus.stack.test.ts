import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { renderDashboards } from '../../deploy/generate/dashboards';
import { KUBERNETES_ALERTS_FILE, loadAlertGroups } from '../../deploy/generate/prometheus-rule';
import {
  ApiWriter,
  planScopes,
  type SyncStack,
  SyncWorkload,
  startSyncStack,
  waitUntil,
} from '../support/stack';
import { SyncProbe } from '../support/sync-client-probe';
import { tokenFor } from '../support/tokens';
import {
  alertOperands,
  type ExternalProcess,
  queryPrometheus,
  requireBinary,
  startNginx,
  startPrometheus,
} from './processes';
import { readRepoFile, repoPath } from './repo';

// The monitoring config against the real thing: promtool checks the shipped Prometheus config and
// rules; then api ×2, delta and gateway ×2 run as processes behind the shipped nginx config, a real
// Prometheus scrapes them with the shipped scrape config (targets and interval rewritten), traffic
// flows through nginx (HTTP writes, reads, WebSocket subscribers, a malformed frame, a Redis
// restart), and every expression of every dashboard panel and alert rule must return data.

/** Grafana's `$__rate_interval` for a 1 s scrape interval. */
const RATE_INTERVAL = '10s';

describe('Prometheus config and rules (promtool)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ops-promtool-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('promtool check config passes on the shipped prometheus.yml (rule path made local)', () => {
    const promtool = requireBinary('promtool');
    const config = readRepoFile('deploy/prometheus/prometheus.yml').replace(
      '/etc/prometheus/alerts.yml',
      repoPath('deploy/prometheus/alerts.yml'),
    );
    writeFileSync(join(dir, 'prometheus.yml'), config);
    const out = execFileSync(promtool, ['check', 'config', join(dir, 'prometheus.yml')], {
      encoding: 'utf8',
    });
    expect(out).toContain('SUCCESS');
  });

  it('promtool check rules passes on alerts.yml and the Kubernetes-only group', () => {
    const promtool = requireBinary('promtool');
    const out = execFileSync(promtool, ['check', 'rules', repoPath('deploy/prometheus/alerts.yml')], {
      encoding: 'utf8',
    });
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
    const k8s = execFileSync(promtool, ['check', 'rules', KUBERNETES_ALERTS_FILE], { encoding: 'utf8' });
    expect(k8s).toMatch(/SUCCESS: 6 rules found/);
  });
});

describe('every dashboard and alert expression returns data from the real services', () => {
  let stack: SyncStack | undefined;
  let lb: ExternalProcess | undefined;
  let prometheus: ExternalProcess | undefined;
  const probes: SyncProbe[] = [];

  beforeAll(async () => {
    // Fail loudly before spending time on the stack if a binary is missing.
    requireBinary('prometheus');
    requireBinary('nginx');
    stack = await startSyncStack({
      label: 'ops_prometheus',
      gatewayEnv: { HEAD_CHECK_INTERVAL_MS: '500' },
      deltaEnv: { PRUNE_INTERVAL_SECONDS: '1' },
    });
    lb = await startNginx({
      api: stack.apis.map((a) => a.port),
      delta: [stack.delta.port],
      gateway: stack.gateways.map((g) => g.port),
    });
    prometheus = await startPrometheus({
      'sync-api': stack.apis.map((a) => `127.0.0.1:${a.port}`),
      'sync-delta': [`127.0.0.1:${stack.delta.port}`],
      'sync-gateway': stack.gateways.map((g) => `127.0.0.1:${g.port}`),
    });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(probes.map((p) => p.stop()));
    await prometheus?.stop();
    await lb?.stop();
    await stack?.stop();
  }, 30_000);

  it('scrapes every service, then answers every panel and rule expression', async () => {
    const s = stack!;
    const lbUrl = lb!.url;
    const wsUrl = `${lbUrl.replace('http', 'ws')}/sync`;

    // Every target up, under the job names the rules use.
    await waitUntil(
      async () => {
        const up = await queryPrometheus(prometheus!.url, 'up == 1');
        return up.result.length === 6;
      },
      20_000,
      'Prometheus scrapes 2 api, 1 delta, 2 gateways and itself',
    );
    const jobs = (await queryPrometheus(prometheus!.url, 'count by (job) (up == 1)')).result;
    expect(Object.fromEntries(jobs.map((r) => [r.metric.job, r.value[1]]))).toEqual({
      'sync-api': '2',
      'sync-delta': '1',
      'sync-gateway': '2',
      prometheus: '1',
    });

    // Traffic, all through nginx: subscribers (two gateways behind least_conn), writes, reads.
    const plan = planScopes(2, 4);
    for (let i = 0; i < 4; i++) {
      const scopes = [plan.scopes[i % plan.scopes.length]!, plan.scopes[(i + 2) % plan.scopes.length]!];
      probes.push(
        new SyncProbe({ urls: [wsUrl], token: await tokenFor(scopes, `sub-${i}`), scopes, label: `p${i}` }),
      );
    }
    await Promise.all(probes.map((p) => p.whenLive(20_000)));
    const writer = new ApiWriter([lbUrl], await tokenFor(['*'], 'writer'));
    const workload = new SyncWorkload(writer, plan, { seed: 7, workers: 1 });
    await workload.createAgents(2);
    await workload.run({ ops: 60, concurrency: 4 });

    const token = await tokenFor(['*'], 'reader');
    const auth = { authorization: `Bearer ${token}` };
    const scope = encodeURIComponent(plan.scopes[0]!);
    expect((await fetch(`${lbUrl}/sync/bootstrap?scope=${scope}`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${lbUrl}/sync/delta?scope=${scope}&lastSyncId=0`, { headers: auth })).status).toBe(
      200,
    );
    expect(
      (await fetch(`${lbUrl}/api/agents`, { method: 'POST', headers: auth, body: '{' })).status,
    ).toBeGreaterThanOrEqual(400);
    expect((await fetch(`${lbUrl}/nowhere`)).status).toBe(404);

    // A client that resumes from a cursor (a delta catch-up), and a malformed frame (an error frame).
    const resumeScopes = [plan.scopes[1]!];
    probes.push(
      new SyncProbe({
        urls: [wsUrl],
        token: await tokenFor(resumeScopes, 'resumer'),
        scopes: resumeScopes,
        cursors: { [resumeScopes[0]!]: 1 },
        label: 'resumer',
      }),
    );
    await probes.at(-1)!.whenLive(20_000);
    const raw = new WebSocket(`${wsUrl}?token=${await tokenFor(['*'], 'raw')}`);
    const errorFrame = await new Promise<{ type: string; code: string }>((resolve, reject) => {
      raw.once('open', () => raw.send('{not json'));
      raw.once('message', (data) => resolve(JSON.parse(String(data))));
      raw.once('error', reject);
    });
    raw.close();
    expect(errorFrame).toMatchObject({ type: 'error', code: 'bad_request' });

    // Redis goes away and comes back: the gateways re-subscribe and fill from the log.
    await s.redis.restart(300);
    await workload.run({ ops: 20, concurrency: 2 });

    // Every expression, as Grafana and the rule evaluator would run it, must return samples.
    const expressions: { where: string; expr: string }[] = [];
    // Grafana's variables as an on-call would set them: the compose namespace, every job/instance.
    const asGrafana = (expr: string) =>
      expr
        .replaceAll('$__rate_interval', RATE_INTERVAL)
        .replaceAll('$namespace', 'compose')
        .replaceAll('$job', '.*')
        .replaceAll('$instance', '.*');
    for (const [file, json] of renderDashboards()) {
      const dashboard = JSON.parse(json) as {
        panels: { title: string; targets?: { expr: string }[] }[];
        annotations: { list: { name: string; expr?: string }[] };
      };
      for (const panel of dashboard.panels) {
        for (const t of panel.targets ?? []) {
          expressions.push({ where: `${file} / ${panel.title}`, expr: asGrafana(t.expr) });
        }
      }
      // A restart or a new build need not have happened: the annotation queries must parse.
      for (const a of dashboard.annotations.list.filter((x) => x.expr)) {
        expressions.push({
          where: `${file} / annotation ${a.name}`,
          expr: `(${asGrafana(a.expr!)}) or vector(1)`,
        });
      }
    }
    for (const group of loadAlertGroups()) {
      for (const rule of group.rules) {
        const operands = alertOperands(String(rule.expr));
        operands.forEach((expr, i) => {
          expressions.push({ where: `alert ${rule.alert} operand ${i + 1}`, expr });
        });
        expressions.push({
          where: `alert ${rule.alert} (whole, must parse)`,
          expr: `(${String(rule.expr)}) or vector(1)`,
        });
      }
    }
    expect(expressions.length).toBeGreaterThan(80);

    const pending = new Map(expressions.map((e) => [e.where + e.expr, e]));
    const lastError = new Map<string, string>();
    const deadline = Date.now() + 30_000;
    while (pending.size > 0 && Date.now() < deadline) {
      for (const [key, { expr }] of pending) {
        const answer = await queryPrometheus(prometheus!.url, expr);
        if (answer.status !== 'success') lastError.set(key, `error: ${answer.error}`);
        else if (answer.result.length > 0) pending.delete(key);
        else lastError.set(key, 'no data');
      }
      if (pending.size > 0) await new Promise((r) => setTimeout(r, 1_000));
    }
    const failures = [...pending].map(([key, e]) => `${e.where}: ${e.expr} → ${lastError.get(key)}`);
    expect(failures, failures.join('\n')).toEqual([]);

    // The traffic really went through nginx to both workers and both gateways.
    const perWorker = await queryPrometheus(
      prometheus!.url,
      'sum by (instance) (sync_mutations_total{result="ok"}) > 0',
    );
    expect(perWorker.result).toHaveLength(2);
  }, 120_000);
});
