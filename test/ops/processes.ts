import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from '../support/ports';
import { CI_INSTALL_HINT, localNginxConfig, repoPath, which } from './repo';

/** A binary from Debian's prometheus/nginx packages, or a failure that says how to install it. */
export function requireBinary(name: 'prometheus' | 'promtool' | 'nginx'): string {
  const found = which(name) ?? (name === 'nginx' && which('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined);
  if (!found) throw new Error(`${name} is not installed: ${CI_INSTALL_HINT}`);
  return found;
}

export interface ExternalProcess {
  url: string;
  port: number;
  dir: string;
  output: string[];
  stop(): Promise<void>;
}

function launch(binary: string, args: string[], dir: string, port: number, url: string): ExternalProcess {
  const output: string[] = [];
  const proc: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  const collect = (chunk: Buffer) => {
    output.push(...chunk.toString().split('\n').filter(Boolean));
    if (output.length > 2000) output.splice(0, output.length - 2000);
  };
  proc.stdout?.on('data', collect);
  proc.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    url,
    port,
    dir,
    output,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitHttp(url: string, proc: ExternalProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1_000) })).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms:\n${proc.output.slice(-20).join('\n')}`);
}

/** deploy/nginx/nginx.conf under a real nginx, its upstreams pointed at local ports. */
export async function startNginx(upstreams: Record<string, number[]>): Promise<ExternalProcess> {
  const nginx = requireBinary('nginx');
  const dir = mkdtempSync(join(tmpdir(), 'ops-nginx-'));
  const port = await freePort();
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, localNginxConfig({ listen: port, upstreams, dir }));
  const proc = launch(
    nginx,
    ['-c', file, '-p', dir, '-g', 'daemon off;'],
    dir,
    port,
    `http://127.0.0.1:${port}`,
  );
  await waitHttp(`${proc.url}/lb/healthz`, proc, 10_000);
  return proc;
}

interface ScrapeConfig {
  job_name: string;
  static_configs: { targets: string[]; labels?: Record<string, string> }[];
  [key: string]: unknown;
}

/**
 * deploy/prometheus/prometheus.yml with each job's targets replaced by local ports (same job
 * names, same rule file, 1 s scrape and evaluation interval); everything else as shipped.
 */
export function localPrometheusConfig(targets: Record<string, string[]>, selfPort: number): string {
  const config = parse(readFileSync(repoPath('deploy/prometheus/prometheus.yml'), 'utf8')) as {
    global: Record<string, unknown>;
    rule_files: string[];
    scrape_configs: ScrapeConfig[];
  };
  config.global.scrape_interval = '1s';
  config.global.scrape_timeout = '1s';
  config.global.evaluation_interval = '1s';
  config.rule_files = [repoPath('deploy/prometheus/alerts.yml')];
  for (const job of config.scrape_configs) {
    const local = job.job_name === 'prometheus' ? [`127.0.0.1:${selfPort}`] : targets[job.job_name];
    if (!local) throw new Error(`no local targets for job ${job.job_name}`);
    const labels = job.static_configs[0]?.labels;
    job.static_configs = [{ targets: local, ...(labels ? { labels } : {}) }];
  }
  return stringify(config);
}

/** A real Prometheus on a free port scraping the given targets with the shipped config and rules. */
export async function startPrometheus(targets: Record<string, string[]>): Promise<ExternalProcess> {
  const prometheus = requireBinary('prometheus');
  const dir = mkdtempSync(join(tmpdir(), 'ops-prometheus-'));
  const port = await freePort();
  const file = join(dir, 'prometheus.yml');
  writeFileSync(file, localPrometheusConfig(targets, port));
  const proc = launch(
    prometheus,
    [
      `--config.file=${file}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    dir,
    port,
    `http://127.0.0.1:${port}`,
  );
  await waitHttp(`${proc.url}/-/ready`, proc, 20_000);
  return proc;
}

/** Result of an instant query: the samples' label sets and values. */
export async function queryPrometheus(
  url: string,
  query: string,
): Promise<{
  status: string;
  error?: string;
  result: { metric: Record<string, string>; value: [number, string] }[];
}> {
  const res = await fetch(`${url}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query }),
  });
  const body = (await res.json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: unknown };
  };
  if (body.status !== 'success') return { status: body.status, error: body.error ?? '', result: [] };
  const data = body.data!;
  const result =
    data.resultType === 'scalar'
      ? [{ metric: {}, value: data.result as [number, string] }]
      : (data.result as { metric: Record<string, string>; value: [number, string] }[]);
  return { status: body.status, result };
}

/**
 * The part of an alert expression that must return data on a healthy system: each operand of a
 * top-level `and`/`or`/`unless`, cut before its top-level comparison (`up == 0` → `up`). An
 * operand that is a parenthesised `and` is split the same way (the burn-rate rules are
 * `(A and B) or (C and D)`), and `absent(x)` stands for `x` (it returns data only when `x` does not).
 */
export function alertOperands(expr: string): string[] {
  return splitOperands(expr).flatMap((part) => {
    const absent = wrappedIn(part, 'absent(');
    if (absent !== undefined) return [absent];
    // `(x or y * 0)` must answer as a whole; only a parenthesised conjunction is split further.
    const inner = wrappedIn(part, '(');
    return inner !== undefined && splitOperands(inner, ['and']).length > 1 ? alertOperands(inner) : [part];
  });
}

/** `s` without `open` and its matching `)` when they enclose all of it, else undefined. */
function wrappedIn(s: string, open: string): string | undefined {
  if (!s.startsWith(open) || !s.endsWith(')')) return undefined;
  let depth = 0;
  for (let i = open.length - 1; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')' && --depth === 0 && i < s.length - 1) return undefined;
  }
  return s.slice(open.length, -1).trim();
}

function splitOperands(expr: string, operators = ['and', 'or', 'unless']): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  const text = expr.replace(/\s+/g, ' ').trim();
  const cut = (s: string) => {
    let d = 0;
    let q: string | null = null;
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (q) {
        if (c === q && s[i - 1] !== '\\') q = null;
        continue;
      }
      if (c === '"' || c === "'") q = c;
      else if ('([{'.includes(c)) d++;
      else if (')]}'.includes(c)) d--;
      else if (
        d === 0 &&
        /[<>=!]/.test(c) &&
        (c !== '=' || s[i + 1] === '=') &&
        (c !== '!' || s[i + 1] === '=')
      ) {
        return s.slice(0, i).trim();
      }
    }
    return s.trim();
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote && text[i - 1] !== '\\') quote = null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (depth === 0) {
      const rest = text.slice(i);
      const op = new RegExp(`^ (${operators.join('|')}) `).exec(rest);
      if (op) {
        parts.push(cut(text.slice(start, i)));
        start = i + op[0].length;
        i = start - 1;
      }
    }
  }
  parts.push(cut(text.slice(start)));
  return parts;
}
