import { parseRedisTarget } from '@openagents/sync-server-kit';
import { describe, expect, it } from 'vitest';
import { envProblems, readRepoFile, readYaml } from './repo';

// The optional `cluster` profile of docker-compose.yml, checked without a Docker engine: six
// cluster-enabled nodes reachable by their service names, a one-shot job forming 3 masters with a
// replica each from exactly those nodes, and the REDIS_URL the header tells operators to set
// accepted by the services and naming nodes of the profile.

interface Service {
  image?: string;
  profiles?: string[];
  command?: string[] | string;
  entrypoint?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[] };
  restart?: string;
}

const compose = readYaml<{ services: Record<string, Service>; 'x-sync-env': Record<string, string> }>(
  'docker-compose.yml',
);
const inProfile = Object.entries(compose.services).filter(([, s]) => s.profiles?.includes('cluster'));
const nodes = inProfile.filter(([, s]) => Array.isArray(s.command) && s.command[0] === 'redis-server');
const flag = (command: string[], name: string) => command[command.indexOf(name) + 1];

describe('docker-compose.yml cluster profile', () => {
  it('has six cluster-enabled nodes announcing their own service names, each with a healthcheck', () => {
    expect(nodes).toHaveLength(6);
    for (const [name, s] of nodes) {
      const command = s.command as string[];
      expect(flag(command, '--cluster-enabled'), name).toBe('yes');
      expect(flag(command, '--cluster-announce-hostname'), name).toBe(name);
      expect(flag(command, '--cluster-preferred-endpoint-type'), name).toBe('hostname');
      expect(s.healthcheck?.test, name).toContain('ping');
    }
  });

  it('forms the cluster once, from exactly those nodes, three masters with one replica each', () => {
    const create = compose.services['redis-cluster-create'];
    expect(create?.profiles).toEqual(['cluster']);
    expect(create?.restart).toBe('no');
    const script = ([] as string[]).concat(create?.command ?? []).join(' ');
    const listed = [...script.matchAll(/(redis-node-\d+):6379/g)].map((m) => m[1]);
    expect(listed.sort()).toEqual(nodes.map(([name]) => name).sort());
    expect(script).toMatch(/--cluster-replicas 1 --cluster-yes/);
    // Re-running the job against a formed cluster must not fail (compose runs it on every `up`).
    expect(script).toMatch(/cluster_state:ok \|\|/);
    for (const [name] of nodes) expect(create?.depends_on?.[name]?.condition, name).toBe('service_healthy');
  });

  it('documents a REDIS_URL that every service accepts and that names nodes of the profile', () => {
    const header = readRepoFile('docker-compose.yml').split('\nx-')[0]!;
    const url = /REDIS_URL=(\S+)/.exec(header)?.[1];
    expect(url).toBeDefined();
    const target = parseRedisTarget(url!);
    expect(target.kind).toBe('cluster');
    if (target.kind !== 'cluster') return;
    for (const seed of target.seeds) expect(nodes.map(([n]) => n)).toContain(seed.host);
    // The anchor passes REDIS_URL through, with the single Redis as the default.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose interpolation, not a JS template
    expect(compose['x-sync-env'].REDIS_URL).toBe('${REDIS_URL:-redis://redis:6379}');
    for (const kind of ['api', 'gateway'] as const) {
      const env = {
        DATABASE_URL: 'postgres://p@h/db',
        DELTA_URL: 'http://d',
        SYNC_JWT_SECRET: 'x'.repeat(32),
      };
      expect(envProblems(kind, { ...env, REDIS_URL: url! }, { allowUnknown: Object.keys(env) })).toEqual([]);
    }
  });
});
