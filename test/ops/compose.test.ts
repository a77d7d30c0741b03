import { readdirSync } from 'node:fs';
import { Ajv2019 } from 'ajv/dist/2019';
import { describe, expect, it } from 'vitest';
import {
  defaultPort,
  durationMs,
  entryOfCommand,
  envProblems,
  nginxUpstreams,
  readRepoFile,
  readYaml,
  repoFileExists,
  repoPath,
  serviceOfCommand,
} from './repo';

// docker-compose.yml checked without a Docker engine: the compose-spec JSON schema (vendored in
// test/ops/schemas) after `${VAR:-default}` interpolation, then everything it points at in the
// repo (entry files, ports, env, healthchecks, mounts) and the start-up order.

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  expose?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  volumes?: string[];
  stop_grace_period?: string;
  restart?: string;
  profiles?: string[];
}

/** `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}` with an empty environment. */
function interpolate<T>(value: T, env: Record<string, string> = {}): T {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (_, name, op, arg) => {
      const set = env[name];
      if (op === ':?' || op === '?') {
        if (set === undefined || (op === ':?' && set === '')) throw new Error(`${name} is required: ${arg}`);
        return set;
      }
      if (op === ':-') return set === undefined || set === '' ? arg : set;
      if (op === '-') return set ?? arg;
      return set ?? '';
    }) as T;
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)])) as T;
  }
  return value;
}

/**
 * The vendored schema, compiled as draft 2019-09. It is written in an older dialect: `$schema`
 * spelt with http and `#`, and draft-04 `id` annotations (`"id": "#/properties/services"`), which
 * ajv rejects; both are annotations only, so they are dropped.
 */
function composeSchema(): object {
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(strip);
    if (!node || typeof node !== 'object') return node;
    return Object.fromEntries(
      Object.entries(node)
        .filter(([k, v]) => k !== '$schema' && !(k === 'id' && typeof v === 'string' && /^#|\.json$/.test(v)))
        .map(([k, v]) => [k, strip(v)]),
    );
  };
  return strip(JSON.parse(readRepoFile('test/ops/schemas/compose-spec.json'))) as object;
}

/** What an operator must set before `docker compose up` (`${VAR:?…}` in the file). */
const REQUIRED_ENV = { GRAFANA_ADMIN_PASSWORD: 'a-password-chosen-by-the-operator' };
const compose = interpolate(
  readYaml<{ services: Record<string, ComposeService> }>('docker-compose.yml'),
  REQUIRED_ENV,
);
const services = compose.services;
const appServices = Object.entries(services).filter(([, s]) => s.command && serviceOfCommand(s.command));

describe('docker-compose.yml', () => {
  it('is valid against the compose specification', () => {
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
    ajv.addFormat('ports', /^((\d+(\.\d+){3}:)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp))?|\d+)$/);
    ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp))?$/);
    const validate = ajv.compile(composeSchema());
    const ok = validate(compose);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
    expect(ok).toBe(true);
  });

  it('the schema check catches a misspelt key (the validator is not vacuous)', () => {
    const ajv = new Ajv2019({ strict: false, validateFormats: false });
    const validate = ajv.compile(composeSchema());
    expect(validate({ services: { a: { image: 'x', depends_onn: ['b'] } } })).toBe(false);
    expect(validate({ services: { a: { image: 'x', healthcheck: { retries: 'many' } } } })).toBe(false);
  });

  it('has the whole stack: datastores, one-shot migration, 2 workers, 2 gateways, delta, LB, monitoring', () => {
    // Services of an optional profile (the Redis Cluster) start only when asked for.
    const byDefault = Object.keys(services).filter((name) => !services[name]!.profiles);
    expect(byDefault.sort()).toEqual(
      [
        'api-1',
        'api-2',
        'delta',
        'gateway-1',
        'gateway-2',
        'grafana',
        'lb',
        'migrate',
        'postgres',
        'prometheus',
        'redis',
      ].sort(),
    );
    const kinds = appServices.map(([, s]) => serviceOfCommand(s.command!));
    expect(kinds.filter((k) => k === 'api')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'gateway')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'delta')).toHaveLength(1);
  });

  it('runs entry files that exist, from an image built by a Dockerfile in the repo', () => {
    for (const [name, s] of Object.entries(services)) {
      if (!s.build) continue;
      expect(s.build.context, name).toBe('.');
      expect(repoFileExists(s.build.dockerfile), `${name}: ${s.build.dockerfile}`).toBe(true);
      expect(s.command, `${name} has a command`).toBeDefined();
      const entry = entryOfCommand(s.command!);
      expect(repoFileExists(entry), `${name}: ${entry} exists`).toBe(true);
    }
    expect(entryOfCommand(services.migrate!.command!)).toBe('packages/server-kit/src/migrate-cli.ts');
  });

  it('gives every service an environment its own config loader accepts, on its default port', () => {
    for (const [name, s] of appServices) {
      const kind = serviceOfCommand(s.command!)!;
      const env = s.environment ?? {};
      // The shared anchor hands every service the same connection settings; a variable read by
      // another service is fine, one read by none is a typo.
      const readBySome = [
        'DATABASE_URL',
        'REDIS_URL',
        'REDIS_CHANNEL_PREFIX',
        'PG_POOL_MAX',
        'MIGRATE_ON_START',
      ];
      expect(envProblems(kind, env, { allowUnknown: readBySome }), name).toEqual([]);
      const port = Number(env.PORT);
      expect(port, `${name} PORT is the ${kind} default`).toBe(defaultPort(kind));
      expect(s.expose, name).toContain(String(port));
      expect(s.healthcheck?.test?.join(' '), name).toContain(`http://127.0.0.1:${port}/readyz`);
      if (kind !== 'gateway')
        expect(env.MIGRATE_ON_START, `${name} leaves migrations to migrate`).toBe('false');
    }
  });

  it('starts in order: migrations once before the services, the LB after every service is healthy', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
        if (condition === 'service_healthy') {
          const hc = services[dep]!.healthcheck;
          expect(hc?.test && !hc.disable, `${dep} has a healthcheck (${name} waits for it)`).toBeTruthy();
        }
      }
    }
    for (const [name, s] of appServices) {
      const kind = serviceOfCommand(s.command!);
      if (kind === 'gateway') continue;
      expect(s.depends_on?.migrate?.condition, name).toBe('service_completed_successfully');
    }
    expect(services.migrate!.restart).toBe('no');
    const lbDeps = services.lb!.depends_on ?? {};
    for (const [name] of appServices)
      expect(lbDeps[name]?.condition, `lb waits for ${name}`).toBe('service_healthy');
  });

  it('gives gateways a stop grace period longer than their drain window', () => {
    for (const [name, s] of appServices) {
      if (serviceOfCommand(s.command!) !== 'gateway') continue;
      const drain = Number(s.environment?.DRAIN_WINDOW_MS);
      expect(drain, `${name} DRAIN_WINDOW_MS`).toBeGreaterThan(0);
      expect(durationMs(s.stop_grace_period ?? '10s'), name).toBeGreaterThan(drain + 2_000);
    }
  });

  it('mounts only files that exist in the repo', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const volume of s.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (!source.startsWith('./')) continue;
        expect(repoFileExists(source.slice(2)), `${name}: ${source}`).toBe(true);
      }
    }
  });

  it('routes the load balancer to compose services on their ports, every worker and gateway included', () => {
    const upstreams = nginxUpstreams(readRepoFile('deploy/nginx/nginx.conf'));
    const expected: Record<string, string> = { api: 'api', delta: 'delta', gateway: 'gateway' };
    for (const [upstream, kind] of Object.entries(expected)) {
      const servers = upstreams.get(upstream) ?? [];
      const members = appServices.filter(([, s]) => serviceOfCommand(s.command!) === kind).map(([n]) => n);
      expect(servers.map((s) => s.host).sort(), `upstream ${upstream}`).toEqual(members.sort());
      for (const server of servers)
        expect(server.port).toBe(Number(services[server.host]!.environment!.PORT));
    }
  });

  it('has Prometheus scrape every service on its port, with the job names the rules use', () => {
    const config = readYaml<{
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    }>('deploy/prometheus/prometheus.yml');
    const scraped = new Map<string, string>();
    for (const job of config.scrape_configs) {
      for (const target of job.static_configs.flatMap((c) => c.targets)) scraped.set(target, job.job_name);
    }
    for (const [name, s] of appServices) {
      const target = `${name}:${s.environment!.PORT}`;
      expect(scraped.get(target), `${target} scraped`).toBe(`sync-${serviceOfCommand(s.command!)}`);
    }
  });

  it('provisions Grafana with the dashboards folder it mounts and the Prometheus it runs', () => {
    const grafana = services.grafana!;
    const mount = grafana.volumes!.find((v) => v.startsWith('./deploy/grafana/dashboards:'))!;
    const provider = readYaml<{ providers: { options: { path: string } }[] }>(
      'deploy/grafana/provisioning/dashboards/sync.yml',
    );
    expect(provider.providers[0]!.options.path).toBe(mount.split(':')[1]);
    const home = grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!;
    expect(
      readdirSync(repoPath('deploy/grafana/dashboards')).map((f) => `${mount.split(':')[1]}/${f}`),
    ).toContain(home);
    const ds = readYaml<{ datasources: { url: string; type: string }[] }>(
      'deploy/grafana/provisioning/datasources/prometheus.yml',
    );
    expect(ds.datasources[0]!.type).toBe('prometheus');
    expect(ds.datasources[0]!.url).toBe('http://prometheus:9090');
    expect(services.prometheus!.ports).toEqual(['127.0.0.1:9090:9090']);
  });

  it('publishes only the load balancer beyond loopback, and Grafana without default credentials', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const port of s.ports ?? []) {
        if (name !== 'lb')
          expect(port, `${name} publishes ${port} on loopback only`).toMatch(/^127\.0\.0\.1:/);
      }
    }
    const env = services.grafana!.environment!;
    expect(env.GF_AUTH_ANONYMOUS_ENABLED).toBe('false');
    expect(env.GF_SECURITY_ADMIN_PASSWORD).toBe(REQUIRED_ENV.GRAFANA_ADMIN_PASSWORD);
    // Without the variable, compose refuses to start rather than falling back to admin/admin.
    const raw = readYaml<{ services: Record<string, ComposeService> }>('docker-compose.yml');
    expect(() => interpolate(raw.services.grafana!.environment)).toThrow(/GRAFANA_ADMIN_PASSWORD/);
  });
});

describe('deploy/Dockerfile', () => {
  const dockerfile = readRepoFile('deploy/Dockerfile');
  const lines = dockerfile.split('\n');

  it('copies the manifest of every workspace before npm ci', () => {
    const pkg = JSON.parse(readRepoFile('package.json')) as { workspaces: string[] };
    const workspaces = pkg.workspaces.flatMap((pattern) =>
      pattern.endsWith('/*')
        ? readdirSync(repoPath(pattern.slice(0, -2)), { withFileTypes: true })
            .filter((d) => d.isDirectory() && repoFileExists(pattern.slice(0, -2), d.name, 'package.json'))
            .map((d) => `${pattern.slice(0, -2)}/${d.name}`)
        : [pattern],
    );
    const copied = lines
      .filter((l) => l.startsWith('COPY ') && l.includes('/package.json'))
      .map((l) => l.split(/\s+/)[1]!.replace(/\/package\.json$/, ''));
    expect(copied.sort()).toEqual(workspaces.sort());
  });

  it('copies sources that exist, runs as a non-root user and has a HEALTHCHECK', () => {
    for (const line of lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from='))) {
      const sources = line
        .split(/\s+/)
        .slice(1, -1)
        .filter((p) => !p.startsWith('--'));
      for (const source of sources) expect(repoFileExists(source), source).toBe(true);
    }
    const users = lines.filter((l) => l.startsWith('USER '));
    expect(users.at(-1)).toBe('USER node');
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
    const cmd = JSON.parse(lines.find((l) => l.startsWith('CMD '))!.slice(4)) as string[];
    expect(repoFileExists(entryOfCommand(cmd))).toBe(true);
  });

  it('compiles in a build stage and runs the build with plain node: no tsx in the runtime image', () => {
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    expect(dockerfile.slice(dockerfile.indexOf('AS build'), dockerfile.indexOf('AS runtime'))).toMatch(
      /^RUN npm run build$/m,
    );
    // No loader flag anywhere in the runtime stage, and the build fails if tsx slipped in.
    expect(runtime).not.toMatch(/--import|--loader|--experimental-strip-types/);
    expect(runtime).toMatch(/if \[ -e node_modules\/tsx \]; then .* exit 1; fi/);
  });

  it('leaves the code read-only for the runtime user: no chown of the app, only .data is theirs', () => {
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    for (const line of runtime.split('\n').filter((l) => l.startsWith('COPY '))) {
      expect(line, 'code copied as root').not.toMatch(/--chown/);
    }
    const chowns = [...runtime.matchAll(/chown\s+(?:-R\s+)?\S+\s+([^&\n]+)/g)].map((m) => m[1]!.trim());
    expect(chowns).toEqual(['/app/.data']);
  });

  it('keeps tests and benchmarks of every workspace out of the build context', () => {
    const ignored = readRepoFile('.dockerignore').split('\n');
    for (const pattern of ['**/test', '**/bench', '**/*.test.ts', '**/node_modules', '.env']) {
      expect(ignored, pattern).toContain(pattern);
    }
  });
});
