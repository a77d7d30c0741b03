import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { kubernetesGroup } from '../../deploy/generate/alerts';
import { renderDashboards } from '../../deploy/generate/dashboards';
import { loadAlertGroups } from '../../deploy/generate/prometheus-rule';
import { generatedNames, type K8sObject, podContainers, podSpec, renderKustomization } from './kustomize';
import {
  defaultPort,
  entryOfCommand,
  envProblems,
  readRepoFile,
  readYaml,
  repoFileExists,
  repoPath,
  serviceOfCommand,
  which,
} from './repo';

// The kustomize overlays rendered (by test/ops/kustomize.ts, and compared with `kubectl kustomize`
// where kubectl is installed), each object validated against the Kubernetes / Prometheus Operator
// OpenAPI schemas (kubernetes-models), then cross-checked: entry files, ports, env accepted by the
// services' own config loaders, probes, Service/Ingress/HPA/PDB/ServiceMonitor references, drain
// timing, and the PrometheusRule matching deploy/prometheus/alerts.yml.

const OVERLAYS = ['dev', 'prod'] as const;
const rendered = Object.fromEntries(
  OVERLAYS.map((o) => [o, renderKustomization(repoPath('k8s/overlays', o))]),
) as Record<(typeof OVERLAYS)[number], K8sObject[]>;

/** Keys of the Secret the prod overlay expects to exist already (docs/operations.md). */
const EXTERNAL_SECRET_KEYS = ['DATABASE_URL', 'REDIS_URL', 'SYNC_JWT_SECRET'];
/** Values to stand in for secret data the test cannot see (prod's external Secret). */
const SAMPLE_SECRET: Record<string, string> = {
  DATABASE_URL: 'postgres://sync:pw@db:5432/sync',
  REDIS_URL: 'redis://redis:6379',
  SYNC_JWT_SECRET: 'x'.repeat(48),
};

const find = (objects: K8sObject[], kind: string, name: string) =>
  objects.find((o) => o.kind === kind && o.metadata.name === name);

async function modelFor(obj: K8sObject): Promise<{ validate(): void }> {
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
  const path =
    group === 'monitoring.coreos.com'
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${obj.kind}`
      : `kubernetes-models/${group ? `${group}/` : ''}${version}/${obj.kind}`;
  const module = (await import(path)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = module[obj.kind];
  if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  return new Model(obj);
}

/** The environment a container would see, with ConfigMap/Secret references resolved. */
interface KeyRef {
  name: string;
  key: string;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { configMapKeyRef?: KeyRef; secretKeyRef?: KeyRef };
}
interface Specs {
  Deployment: { template: { metadata: { labels: Record<string, string> } } };
  Service: { selector: Record<string, string>; ports: { name: string; targetPort: string }[] };
  Ingress: {
    rules: {
      http: {
        paths: {
          path: string;
          pathType: string;
          backend: { service: { name: string; port: { name: string } } };
        }[];
      };
    }[];
  };
  HorizontalPodAutoscaler: { scaleTargetRef: { kind: string; name: string } };
  PodDisruptionBudget: { selector: { matchLabels: Record<string, string> } };
  ServiceMonitor: {
    selector: { matchExpressions: { values: string[] }[] };
    endpoints: { port: string; path: string }[];
  };
}
/** The spec of an object, typed by its kind (only the fields these checks read). */
const specOf = <K extends keyof Specs>(_kind: K, o: K8sObject) => o.spec as Specs[K];

function containerEnv(objects: K8sObject[], env: EnvVar[]) {
  const out: Record<string, string> = {};
  for (const e of env) {
    if (e.value !== undefined) {
      out[e.name] = e.value;
      continue;
    }
    const cm = e.valueFrom?.configMapKeyRef;
    const secret = e.valueFrom?.secretKeyRef;
    if (cm) {
      const map = find(objects, 'ConfigMap', cm.name);
      if (!map) throw new Error(`${e.name}: ConfigMap ${cm.name} not rendered`);
      const data = map.data as Record<string, string>;
      if (!(cm.key in data)) throw new Error(`${e.name}: ConfigMap ${cm.name} has no key ${cm.key}`);
      out[e.name] = data[cm.key]!;
    } else if (secret) {
      const s = find(objects, 'Secret', secret.name);
      if (s) {
        const data = s.data as Record<string, string>;
        if (!(secret.key in data))
          throw new Error(`${e.name}: Secret ${secret.name} has no key ${secret.key}`);
        out[e.name] = Buffer.from(data[secret.key]!, 'base64').toString();
      } else {
        // Only sync-secrets may come from outside the overlay, with its documented keys.
        if (secret.name !== 'sync-secrets' || !EXTERNAL_SECRET_KEYS.includes(secret.key)) {
          throw new Error(
            `${e.name}: Secret ${secret.name}/${secret.key} is neither rendered nor documented`,
          );
        }
        out[e.name] = SAMPLE_SECRET[secret.key]!;
      }
    } else {
      throw new Error(`${e.name}: unsupported env source`);
    }
  }
  return out;
}

describe.each(OVERLAYS)('k8s overlay %s', (overlay) => {
  const objects = rendered[overlay];
  // The sync services (the dev overlay also runs throwaway postgres and redis Deployments).
  const workloads = objects.filter((o) => o.kind === 'Deployment' && o.metadata.name.startsWith('sync-'));

  it('renders the expected objects', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    for (const expected of [
      'Namespace/',
      'ConfigMap/sync-config',
      'NetworkPolicy/sync-default-deny-ingress',
      'NetworkPolicy/sync-from-ingress-and-prometheus',
      'NetworkPolicy/sync-delta-from-gateways',
      'Deployment/sync-api',
      'Deployment/sync-delta',
      'Deployment/sync-gateway',
      'Service/sync-api',
      'Service/sync-delta',
      'Service/sync-gateway',
      'HorizontalPodAutoscaler/sync-api',
      'HorizontalPodAutoscaler/sync-gateway',
      'PodDisruptionBudget/sync-api',
      'PodDisruptionBudget/sync-gateway',
      'PodDisruptionBudget/sync-delta',
      'Ingress/sync-http',
      'Ingress/sync-websocket',
      'ServiceMonitor/openagents-sync',
      'PrometheusRule/openagents-sync',
    ]) {
      expect(
        kinds.some((k) => k.startsWith(expected)),
        expected,
      ).toBe(true);
    }
    const namespace = objects.find((o) => o.kind === 'Namespace')!.metadata.name;
    for (const o of objects)
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, o.metadata.name).toBe(namespace);
  });

  it('validates every object against the Kubernetes and Prometheus Operator schemas', async () => {
    for (const obj of objects) {
      const model = await modelFor(obj);
      expect(() => model.validate(), `${obj.kind}/${obj.metadata.name}`).not.toThrow();
    }
  });

  it('runs existing entry files with an environment the services accept, on their default ports', () => {
    for (const obj of workloads) {
      for (const c of podContainers(obj)) {
        const command = c.command as string[];
        const entry = entryOfCommand(command);
        expect(repoFileExists(entry), `${obj.metadata.name}: ${entry}`).toBe(true);
        expect(String(c.image), 'image set by the overlay').toMatch(/openagents-sync:[\w.-]+$/);
        const env = containerEnv(objects, c.env as EnvVar[]);
        const kind = serviceOfCommand(command);
        if (!kind) {
          expect(entry).toBe('packages/server-kit/src/migrate-cli.ts');
          expect(Object.keys(env)).toContain('DATABASE_URL');
          continue;
        }
        expect(envProblems(kind, env), obj.metadata.name).toEqual([]);
        const ports = c.ports as { name: string; containerPort: number }[];
        expect(ports, obj.metadata.name).toEqual([{ name: 'http', containerPort: defaultPort(kind) }]);
        expect(Number(env.PORT)).toBe(defaultPort(kind));
        if (kind !== 'gateway') expect(env.MIGRATE_ON_START, obj.metadata.name).toBe('false');
      }
    }
  });

  it('probes /readyz and /healthz on the named port, and runs as non-root', () => {
    for (const obj of workloads) {
      const pod = podSpec(obj)!;
      expect((pod.securityContext as { runAsNonRoot: boolean }).runAsNonRoot).toBe(true);
      for (const c of pod.containers) {
        const get = (probe: string) => (c[probe] as { httpGet: { path: string; port: string } }).httpGet;
        expect(get('readinessProbe'), obj.metadata.name).toEqual({ path: '/readyz', port: 'http' });
        expect(get('livenessProbe'), obj.metadata.name).toEqual({ path: '/healthz', port: 'http' });
        expect(c.resources, obj.metadata.name).toBeDefined();
      }
    }
  });

  it('leaves replicas to the HPAs: no Deployment they scale sets replicas', () => {
    const scaled = objects
      .filter((o) => o.kind === 'HorizontalPodAutoscaler')
      .map((h) => specOf('HorizontalPodAutoscaler', h).scaleTargetRef.name);
    expect(scaled.sort()).toEqual(['sync-api', 'sync-delta', 'sync-gateway']);
    for (const name of scaled) {
      // `kubectl apply` would reset the HPA's count to this value on every deploy.
      expect(
        (find(objects, 'Deployment', name)!.spec as { replicas?: number }).replicas,
        name,
      ).toBeUndefined();
    }
  });

  it('mounts no service-account token in any pod', () => {
    for (const obj of objects.filter((o) => o.kind === 'Deployment')) {
      expect(podSpec(obj)!.automountServiceAccountToken, obj.metadata.name).toBe(false);
    }
  });

  it('runs the migrations in an init container of every pod that reads Postgres, and no Job', () => {
    expect(objects.some((o) => o.kind === 'Job')).toBe(false);
    for (const obj of workloads) {
      const pod = podSpec(obj) as unknown as {
        containers: { env: EnvVar[] }[];
        initContainers?: Record<string, unknown>[];
      };
      const usesPostgres = pod.containers.some((c) => c.env.some((e) => e.name === 'DATABASE_URL'));
      const init = pod.initContainers ?? [];
      if (!usesPostgres) {
        expect(init, obj.metadata.name).toEqual([]);
        continue;
      }
      expect(
        init.map((c) => c.name),
        obj.metadata.name,
      ).toEqual(['migrate']);
      expect(entryOfCommand(init[0]!.command as string[])).toBe('packages/server-kit/src/migrate-cli.ts');
      const env = containerEnv(objects, pod.containers[0]!.env);
      expect(env.MIGRATE_ON_START, `${obj.metadata.name} never migrates itself`).toBe('false');
      // A failed migration must stall the rollout, not replace serving pods.
      const strategy = (obj.spec as { strategy: { rollingUpdate: { maxUnavailable: number } } }).strategy;
      expect(strategy.rollingUpdate.maxUnavailable).toBe(0);
    }
  });

  it('fits the Postgres pools at the HPA maxima (plus rollout surge) into the connection budget', () => {
    const config = find(objects, 'ConfigMap', 'sync-config')!.data as Record<string, string>;
    const budget = Number(config.POSTGRES_MAX_CONNECTIONS) - Number(config.POSTGRES_RESERVED_CONNECTIONS);
    expect(budget).toBeGreaterThan(0);
    let worst = 0;
    const lines: string[] = [];
    for (const hpa of objects.filter((o) => o.kind === 'HorizontalPodAutoscaler')) {
      const { scaleTargetRef, maxReplicas } = hpa.spec as {
        scaleTargetRef: { name: string };
        maxReplicas: number;
      };
      const deployment = find(objects, 'Deployment', scaleTargetRef.name)!;
      const main = podSpec(deployment)!.containers[0]!;
      const env = containerEnv(objects, main.env as EnvVar[]);
      if (!env.DATABASE_URL) continue;
      const pool = Number(env.PG_POOL_MAX);
      expect(pool, `${scaleTargetRef.name} sets PG_POOL_MAX`).toBeGreaterThan(0);
      const maxSurge = (deployment.spec as { strategy: { rollingUpdate: { maxSurge: number | string } } })
        .strategy.rollingUpdate.maxSurge;
      const surge =
        typeof maxSurge === 'string'
          ? Math.ceil((Number.parseFloat(maxSurge) / 100) * maxReplicas)
          : maxSurge;
      // Each pod's pool, plus one migration connection for each pod starting during a rollout.
      const connections = (maxReplicas + surge) * pool + surge;
      lines.push(`${scaleTargetRef.name}: (${maxReplicas} + ${surge}) × ${pool} + ${surge} = ${connections}`);
      worst += connections;
    }
    expect(worst, `${lines.join('; ')} > ${budget}`).toBeLessThanOrEqual(budget);
    // The dev overlay runs its own Postgres: its max_connections is the one the budget assumes.
    const postgres = find(objects, 'Deployment', 'postgres');
    if (postgres) {
      const args = podSpec(postgres)!.containers[0]!.args as string[];
      expect(args).toContain(`max_connections=${config.POSTGRES_MAX_CONNECTIONS}`);
    }
  });

  it('lets only the ingress controller, Prometheus and (for delta) the gateways in', () => {
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
    type Peer = { podSelector?: Selector; namespaceSelector?: Selector };
    type Selector = {
      matchLabels?: Record<string, string>;
      matchExpressions?: { key: string; operator: string; values: string[] }[];
    };
    const matches = (selector: Selector, labels: Record<string, string>) =>
      Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
      (selector.matchExpressions ?? []).every(
        (e) => e.operator === 'In' && e.values.includes(labels[e.key] ?? ''),
      );
    const podLabels = (name: string) =>
      specOf('Deployment', find(objects, 'Deployment', name)!).template.metadata.labels;
    // Is traffic from (a pod with `from` labels in namespace `ns`) allowed to reach pod `to`?
    const allowed = (to: string, from: { ns: string; labels?: Record<string, string> }) => {
      const selecting = policies.filter((p) =>
        matches((p.spec as { podSelector: Selector }).podSelector, podLabels(to)),
      );
      expect(selecting.length, `${to} is selected by a policy (default deny)`).toBeGreaterThan(0);
      return selecting.some((p) =>
        ((p.spec as { ingress?: { from: Peer[] }[] }).ingress ?? []).some((rule) =>
          rule.from.some((peer) =>
            peer.namespaceSelector
              ? matches(peer.namespaceSelector, { 'kubernetes.io/metadata.name': from.ns }) &&
                !peer.podSelector
              : peer.podSelector !== undefined &&
                from.ns === 'self' &&
                matches(peer.podSelector, from.labels ?? {}),
          ),
        ),
      );
    };
    const deny = policies.find((p) => p.metadata.name === 'sync-default-deny-ingress')!;
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress'] });
    for (const name of ['sync-api', 'sync-delta', 'sync-gateway']) {
      expect(allowed(name, { ns: 'ingress-nginx' }), `ingress → ${name}`).toBe(true);
      expect(allowed(name, { ns: 'monitoring' }), `Prometheus → ${name}`).toBe(true);
      expect(allowed(name, { ns: 'elsewhere' }), `another namespace → ${name}`).toBe(false);
    }
    expect(allowed('sync-delta', { ns: 'self', labels: podLabels('sync-gateway') })).toBe(true);
    expect(allowed('sync-gateway', { ns: 'self', labels: podLabels('sync-api') })).toBe(false);
    if (find(objects, 'Deployment', 'postgres')) {
      for (const store of ['postgres', 'redis']) {
        expect(allowed(store, { ns: 'self', labels: podLabels('sync-api') }), `api → ${store}`).toBe(true);
      }
    }
  });

  it('scales gateways on connections no higher than one pod was measured with', () => {
    // docs/loadtest.md: the most connections one gateway has been measured with is 5,000
    // (bench:fanout and the reconnect storm); an HPA target above that is a guess.
    const MEASURED_CONNECTIONS_PER_GATEWAY = 5_000;
    const hpa = find(objects, 'HorizontalPodAutoscaler', 'sync-gateway')!;
    const metrics = (hpa.spec as { metrics: { type: string; pods?: { target: { averageValue: string } } }[] })
      .metrics;
    for (const m of metrics.filter((x) => x.type === 'Pods')) {
      expect(Number(m.pods!.target.averageValue)).toBeLessThanOrEqual(MEASURED_CONNECTIONS_PER_GATEWAY);
    }
  });

  it('lets a gateway drain: grace period > preStop + DRAIN_WINDOW_MS', () => {
    const gateway = find(objects, 'Deployment', 'sync-gateway')!;
    const pod = podSpec(gateway)!;
    const c = podContainers(gateway)[0]!;
    const env = containerEnv(objects, c.env as EnvVar[]);
    const preStop = (c.lifecycle as { preStop: { exec: { command: string[] } } }).preStop.exec.command;
    expect(preStop[0]).toBe('sleep');
    const preStopMs = Number(preStop[1]) * 1000;
    const graceMs = Number(pod.terminationGracePeriodSeconds) * 1000;
    expect(graceMs).toBeGreaterThan(preStopMs + Number(env.DRAIN_WINDOW_MS) + 5_000);
  });

  it('wires Services, Ingress paths, HPAs, PDBs and the ServiceMonitor to things that exist', () => {
    const deploymentLabels = (name: string) =>
      (podSpec(find(objects, 'Deployment', name)!) &&
        specOf('Deployment', find(objects, 'Deployment', name)!).template.metadata.labels) as Record<
        string,
        string
      >;
    const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
      Object.entries(selector).every(([k, v]) => labels[k] === v);
    for (const svc of objects.filter((o) => o.kind === 'Service')) {
      const spec = svc.spec as {
        selector: Record<string, string>;
        ports: { name: string; targetPort: string }[];
      };
      const target = objects
        .filter((o) => o.kind === 'Deployment')
        .find((w) => selects(spec.selector, specOf('Deployment', w).template.metadata.labels));
      expect(target, `Service ${svc.metadata.name} selects a Deployment`).toBeDefined();
      const portNames = podSpec(target!)!.containers.flatMap((c) =>
        (c.ports as { name: string }[]).map((p) => p.name),
      );
      for (const p of spec.ports) expect(portNames, svc.metadata.name).toContain(p.targetPort);
    }
    const routes = new Map<string, string>();
    for (const ing of objects.filter((o) => o.kind === 'Ingress')) {
      for (const rule of specOf('Ingress', ing).rules) {
        for (const p of rule.http.paths) {
          const svc = find(objects, 'Service', p.backend.service.name);
          expect(svc, `Ingress ${ing.metadata.name} → ${p.backend.service.name}`).toBeDefined();
          expect(specOf('Service', svc!).ports.map((x: { name: string }) => x.name)).toContain(
            p.backend.service.port.name,
          );
          routes.set(`${p.pathType} ${p.path}`, p.backend.service.name);
        }
      }
    }
    expect(Object.fromEntries(routes)).toEqual({
      'Prefix /api': 'sync-api',
      'Exact /sync/bootstrap': 'sync-delta',
      'Exact /sync/delta': 'sync-delta',
      'Exact /sync': 'sync-gateway',
    });
    const ws = find(objects, 'Ingress', 'sync-websocket')!;
    const annotations = ws.metadata.annotations as Record<string, string>;
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThanOrEqual(
      3600,
    );
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-send-timeout'])).toBeGreaterThanOrEqual(
      3600,
    );
    for (const hpa of objects.filter((o) => o.kind === 'HorizontalPodAutoscaler')) {
      const ref = specOf('HorizontalPodAutoscaler', hpa).scaleTargetRef;
      expect(find(objects, ref.kind, ref.name), `HPA ${hpa.metadata.name}`).toBeDefined();
    }
    for (const pdb of objects.filter((o) => o.kind === 'PodDisruptionBudget')) {
      const selector = specOf('PodDisruptionBudget', pdb).selector.matchLabels;
      expect(
        workloads.some((w) => selects(selector, deploymentLabels(w.metadata.name))),
        `PDB ${pdb.metadata.name}`,
      ).toBe(true);
    }
    const monitor = find(objects, 'ServiceMonitor', 'openagents-sync')!;
    const values = specOf('ServiceMonitor', monitor).selector.matchExpressions[0]!.values;
    for (const name of ['sync-api', 'sync-delta', 'sync-gateway']) {
      expect(values).toContain(name);
      expect(find(objects, 'Service', name)!.metadata.labels!['app.kubernetes.io/name']).toBe(name);
    }
    expect(specOf('ServiceMonitor', monitor).endpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
    // kube-prometheus-stack selects ServiceMonitors and PrometheusRules by `release` by default.
    expect(monitor.metadata.labels?.release).toBe('kube-prometheus-stack');
    expect(find(objects, 'PrometheusRule', 'openagents-sync')!.metadata.labels?.release).toBe(
      'kube-prometheus-stack',
    );
  });
});

describe('k8s generated objects', () => {
  it('ships the common rule groups of alerts.yml plus the Kubernetes-only group as the PrometheusRule', () => {
    const rule = parseAllDocuments(readRepoFile('k8s/base/prometheusrule.yaml'))[0]!.toJSON() as K8sObject;
    const common = loadAlertGroups().filter((g) => g.name !== 'sync-compose-watchdog');
    expect((rule.spec as { groups: unknown }).groups).toEqual([...common, kubernetesGroup()]);
  });

  it('ships the dashboards JSON generated from deploy/generate/dashboards.ts', () => {
    for (const [name, json] of renderDashboards()) {
      expect(JSON.parse(readRepoFile('deploy/grafana/dashboards', name)), name).toEqual(JSON.parse(json));
    }
  });
});

describe('hashed configuration', () => {
  it('generates sync-config (content hash in its name) instead of shipping a fixed ConfigMap', () => {
    const base = readYaml<{
      resources: string[];
      configMapGenerator?: { name: string }[];
      generatorOptions?: { disableNameSuffixHash?: boolean };
    }>('k8s/base/kustomization.yaml');
    expect(base.configMapGenerator?.map((g) => g.name)).toContain('sync-config');
    expect(base.generatorOptions?.disableNameSuffixHash).not.toBe(true);
    const kubectl = which('kubectl');
    if (!kubectl) return;
    // With kubectl: every reference follows the hashed name, so a changed value rolls the pods.
    const text = execFileSync(kubectl, ['kustomize', repoPath('k8s/overlays/prod')], { encoding: 'utf8' });
    const names = new Set(text.match(/sync-config[\w-]*/g));
    expect([...names]).toHaveLength(1);
    expect([...names][0]).toMatch(/^sync-config-[a-z0-9]{10}$/);
  });
});

describe('kubectl kustomize', () => {
  it('renders the same objects as the test renderer (when kubectl is installed)', () => {
    const kubectl = which('kubectl');
    if (!kubectl) {
      // Not on every machine (Debian has no recent kubectl); the test renderer above still ran.
      console.info('kubectl not installed: compared nothing, the test renderer alone was checked');
      return;
    }
    for (const overlay of OVERLAYS) {
      const dir = repoPath('k8s/overlays', overlay);
      let text = execFileSync(kubectl, ['kustomize', dir], { encoding: 'utf8' });
      for (const name of generatedNames(dir))
        text = text.replace(new RegExp(`${name}-[a-z0-9]{10}\\b`, 'g'), name);
      const theirs = parseAllDocuments(text).map((d) => d.toJSON() as K8sObject);
      const key = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
      const sort = (list: K8sObject[]) => [...list].sort((a, b) => key(a).localeCompare(key(b)));
      expect(sort(rendered[overlay]), overlay).toEqual(sort(theirs));
    }
  });
});

describe('Ingress and nginx agree', () => {
  it('route the same paths', () => {
    const conf = readRepoFile('deploy/nginx/nginx.conf');
    for (const location of [
      'location /api/',
      'location = /sync/bootstrap',
      'location = /sync/delta',
      'location = /sync ',
    ]) {
      expect(conf).toContain(location);
    }
    expect(readYaml('k8s/base/kustomization.yaml')).toBeDefined();
  });
});
