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
      'Job/sync-migrate',
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
    for (const obj of [...workloads, find(objects, 'Job', 'sync-migrate')!]) {
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
      for (const c of podContainers(obj)) {
        const get = (probe: string) => (c[probe] as { httpGet: { path: string; port: string } }).httpGet;
        expect(get('readinessProbe'), obj.metadata.name).toEqual({ path: '/readyz', port: 'http' });
        expect(get('livenessProbe'), obj.metadata.name).toEqual({ path: '/healthz', port: 'http' });
        expect(c.resources, obj.metadata.name).toBeDefined();
      }
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
      const portNames = podContainers(target!).flatMap((c) =>
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
