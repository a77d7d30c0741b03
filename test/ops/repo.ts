import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadEnv } from '@openagents/sync-server-kit';
import { parse } from 'yaml';
import type { z } from 'zod';
import { WORKSPACES } from '../../scripts/build';
import { ApiConfigSchema } from '../../services/api/src/config';
import { DeltaConfigSchema } from '../../services/delta/src/config';
import { GatewayEnv } from '../../services/gateway/src/config';

/** Root of the repository. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const repoPath = (...parts: string[]) => join(ROOT, ...parts);
export const readRepoFile = (...parts: string[]) => readFileSync(repoPath(...parts), 'utf8');
export const repoFileExists = (...parts: string[]) => existsSync(repoPath(...parts));
/** Parses a YAML file of the repo (with `<<` merge keys, as compose uses them). */
export const readYaml = <T = unknown>(...parts: string[]): T =>
  parse(readRepoFile(...parts), { merge: true }) as T;

export type AppService = 'api' | 'delta' | 'gateway';

/** The real configuration schemas of the services: env given by compose and k8s is checked with them. */
export const SERVICE_SCHEMAS: Record<AppService, z.ZodObject> = {
  api: ApiConfigSchema,
  delta: DeltaConfigSchema,
  gateway: GatewayEnv,
};

/** `node services/<name>/dist/main.js` → `<name>`; anything else → undefined. */
export function serviceOfCommand(command: readonly string[]): AppService | undefined {
  const entry = command.find((part) => /^services\/[a-z-]+\/dist\/main\.js$/.test(part));
  const name = entry?.split('/')[1];
  return name === 'api' || name === 'delta' || name === 'gateway' ? name : undefined;
}

/**
 * The source file a container command runs, checked to be `node <workspace>/dist/<entry>.js` (the
 * build of `npm run build`, no TypeScript loader) for an entry that scripts/build.ts compiles:
 * `node services/api/dist/main.js` → `services/api/src/main.ts`.
 */
export function entryOfCommand(command: readonly string[]): string {
  const [node, file] = command;
  const built = file ? /^(.+)\/dist\/([a-z-]+)\.js$/.exec(file) : null;
  const workspace = built && WORKSPACES.find((ws) => ws.dir === built[1] && ws.outDir === 'dist');
  if (node !== 'node' || command.length !== 2 || !built || !workspace?.entries.includes(`${built[2]}.ts`)) {
    throw new Error(`unexpected command ${JSON.stringify(command)}: want node <workspace>/dist/<entry>.js`);
  }
  return `${built[1]}/src/${built[2]}.ts`;
}

/** The default of PORT in a service's schema (what it listens on when PORT is unset). */
export function defaultPort(service: AppService): number {
  return (SERVICE_SCHEMAS[service].shape.PORT as z.ZodType<number>).parse(undefined);
}

/**
 * Validates an environment with the service's own loader (as its main.ts would at start) and
 * returns the problems: the loader's, plus variables the service does not read (typos).
 */
export function envProblems(
  service: AppService,
  env: Record<string, string>,
  options: { allowUnknown?: readonly string[] } = {},
): string[] {
  const problems: string[] = [];
  const schema = SERVICE_SCHEMAS[service];
  try {
    loadEnv(schema, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  for (const key of Object.keys(env)) {
    if (!(key in schema.shape) && !options.allowUnknown?.includes(key)) {
      problems.push(`${key}: not read by ${service}`);
    }
  }
  return problems;
}

/** Go-style duration ("30s", "1m30s", "500ms") in milliseconds. */
export function durationMs(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/g;
  const units: Record<string, number> = {
    h: 3_600_000,
    m: 60_000,
    s: 1000,
    ms: 1,
    us: 1e-3,
    µs: 1e-3,
    ns: 1e-6,
  };
  let total = 0;
  let consumed = 0;
  for (const match of text.matchAll(re)) {
    total += Number(match[1]) * units[match[2]!]!;
    consumed += match[0].length;
  }
  if (consumed !== text.length || consumed === 0) throw new Error(`not a duration: ${text}`);
  return total;
}

/** `server host:port` lines of each upstream block of the nginx config. */
export function nginxUpstreams(conf: string): Map<string, { host: string; port: number }[]> {
  const upstreams = new Map<string, { host: string; port: number }[]>();
  for (const block of conf.matchAll(/upstream\s+([a-z0-9_-]+)\s*\{([^}]*)\}/g)) {
    const servers = [...block[2]!.matchAll(/^\s*server\s+([a-z0-9.-]+):(\d+)/gm)].map((m) => ({
      host: m[1]!,
      port: Number(m[2]),
    }));
    upstreams.set(block[1]!, servers);
  }
  return upstreams;
}

/** The shipped config with upstream servers and the listen port pointed at this machine. */
export function localNginxConfig(ports: {
  listen: number;
  upstreams: Record<string, number[]>;
  /** Folder for the pid, logs and temp files (stdout/stderr may be sockets under a test runner). */
  dir: string;
}): string {
  let conf = readRepoFile('deploy/nginx/nginx.conf');
  for (const [name] of nginxUpstreams(conf)) {
    const wanted = ports.upstreams[name];
    if (!wanted) throw new Error(`no ports for upstream ${name}`);
    conf = conf.replace(
      new RegExp(`(upstream\\s+${name}\\s*\\{)([^}]*)\\}`),
      (_, head: string, body: string) => {
        const rest = body.replace(/^\s*server\s+[^;]+;\s*$/gm, '').trimEnd();
        const servers = wanted
          .map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=1s;`)
          .join('\n');
        return `${head}${rest}\n${servers}\n  }`;
      },
    );
  }
  return conf
    .replace(/listen 8080 reuseport;/, `listen 127.0.0.1:${ports.listen};`)
    .replace(/^pid .*;$/m, `pid ${ports.dir}/nginx.pid;`)
    .replace(/error_log \/dev\/stderr/, `error_log ${ports.dir}/error.log`)
    .replace(/access_log \/dev\/stdout/, `access_log ${ports.dir}/access.log`)
    .replace(/\/tmp\/nginx-(client-body|proxy|fastcgi|uwsgi|scgi);/g, `${ports.dir}/$1;`);
}

/** Metric names used by an expression; histogram series suffixes are mapped to the family. */
export function metricNamesIn(expr: string): string[] {
  return [...expr.matchAll(/\b(sync_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|count|sum)$/, ''));
}

/** Path of an executable on PATH, or undefined. */
export function which(binary: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The line to add to .ci/run when a tool the ops tests need is missing. */
export const CI_INSTALL_HINT =
  'install it: `apt-get update && apt-get install -y --no-install-recommends prometheus nginx` ' +
  '(.ci/run does this before `npm test`)';
