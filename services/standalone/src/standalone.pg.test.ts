import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_ORG_ID } from '@openagents/sync-console';
import type { ServerFrame } from '@openagents/sync-protocol';
import { createLogger, mintToken } from '@openagents/sync-server-kit';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { loadStandaloneConfig } from './config';
import { CONSOLE_SCOPES, CONSOLE_TOKEN_TTL_SECONDS, createStandalone, readConnections } from './standalone';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const silent = createLogger({ name: 'standalone-test', level: 'silent' });

/** A stand-in for the built console: the page the token is injected into. */
function consoleDist(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oas-console-'));
  writeFileSync(
    join(dir, 'index.html'),
    '<!doctype html><html><head><title>console</title></head><body></body></html>',
  );
  return dir;
}

/** The token the console page carries, or null when none is embedded. */
function embeddedToken(html: string): string | null {
  const match = /window\.__SYNC_CONFIG__ = (\{.*?\});/.exec(html);
  return match ? ((JSON.parse(match[1]!) as { token?: string }).token ?? null) : null;
}

/** A raw HTTP request with a Host header of our choosing (fetch sets its own). */
function rawRequest(
  port: number,
  options: { host: string; path: string; method?: string; headers?: Record<string, string> },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: options.path,
        method: options.method ?? 'GET',
        headers: { ...options.headers, host: options.host },
      },
      (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101, body: '' });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('standalone server (embedded Postgres, in-process bus)', () => {
  let dataDir: string;
  let distDir: string;
  let server: ReturnType<typeof createStandalone>;
  let port: number;
  /** A token for any scope, minted the way `npm run token` does, from the secret on disk. */
  const tokenFor = (scopes: string[]) =>
    mintToken({
      secret: readFileSync(join(dataDir, 'dev-jwt-secret'), 'utf8').trim(),
      sub: 't',
      scopes,
      ttl: '10m',
    });

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'oas-standalone-'));
    // The embedded Postgres runs as the postgres user, who must be able to enter the folder.
    chmodSync(dataDir, 0o755);
    distDir = consoleDist();
    port = await freePort();
    const config = loadStandaloneConfig({
      PORT: String(port),
      EMBEDDED_PG_PORT: String(await freePort()),
      DATA_DIR: dataDir,
      ALLOWED_ORIGINS: 'http://localhost:5173',
      LOG_LEVEL: 'silent',
    });
    server = createStandalone({ config, log: silent, consoleDistDir: distDir });
    await server.start();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(distDir, { recursive: true, force: true });
  });

  it('keeps the cluster and a generated secret (owner-only) under the data folder, and verifies with it', async () => {
    expect(existsSync(join(dataDir, 'pg', 'PG_VERSION'))).toBe(true);
    const file = join(dataDir, 'dev-jwt-secret');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim()).toHaveLength(43);
    const ok = await fetch(`${server.info().url}/sync/bootstrap?scope=org:${crypto.randomUUID()}`, {
      headers: { authorization: `Bearer ${await tokenFor(['org:*'])}` },
    });
    expect(ok.status).toBe(200);
  });

  it('is ready and serves metrics on the one port', async () => {
    const { url } = server.info();
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ checks: { database: true } });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('sync_gateway_connections');
    expect(metrics).toContain('sync_mutations_total');
  });

  it('serves writes, reads and the live stream', async () => {
    const { url, wsUrl } = server.info();
    const org = crypto.randomUUID();
    const scope = `org:${org}`;
    const token = await tokenFor([scope]);
    const frames: ServerFrame[] = [];
    const ws = new WebSocket(`${wsUrl}?token=${token}`);
    ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ type: 'subscribe', scope }));
    await expect.poll(() => frames.some((f) => f.type === 'subscribed')).toBe(true);

    const res = await fetch(`${url}/api/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ org_id: org, name: 'Scout' }),
    });
    expect(res.status).toBe(201);
    const created = await res.json();
    expect(created).toMatchObject({ scope, syncId: 1 });

    await expect
      .poll(() => frames.filter((f) => f.type === 'sync').flatMap((f) => f.events.map((e) => e.id)))
      .toEqual([1]);
    ws.close();

    const boot = await fetch(`${url}/sync/bootstrap?scope=${scope}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(await boot.json()).toMatchObject({ lastSyncId: 1, models: { Agent: [created.data] } });
  });

  it('gives the console page a token for the demo org and agents only, living hours, not days', async () => {
    const { url, devToken } = server.info();
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    const token = embeddedToken(await page.text());
    expect(token).not.toBeNull();
    for (const t of [token!, devToken!]) {
      const claims = decodeJwt(t);
      expect(claims.scopes).toEqual([`org:${DEMO_ORG_ID}`, 'agent:*']);
      expect(claims.scopes).not.toContain('*');
      expect(claims.exp! - claims.iat!).toBe(CONSOLE_TOKEN_TTL_SECONDS);
      expect(CONSOLE_TOKEN_TTL_SECONDS).toBeLessThanOrEqual(12 * 3600);
    }
    const read = (scope: string) =>
      fetch(`${url}/sync/bootstrap?scope=${scope}`, { headers: { authorization: `Bearer ${token}` } });
    expect((await read(`org:${DEMO_ORG_ID}`)).status).toBe(200);
    expect((await read(`agent:${crypto.randomUUID()}`)).status).toBe(200);
    expect((await read(`org:${crypto.randomUUID()}`)).status).toBe(403);
    expect(CONSOLE_SCOPES).toEqual([`org:${DEMO_ORG_ID}`, 'agent:*']);
  });

  it('listens on the loopback interface only', async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    const reach = (host: string) =>
      new Promise<string>((resolve) => {
        const socket = connect({ host, port }, () => {
          socket.destroy();
          resolve('connected');
        });
        socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      });
    expect(await reach('127.0.0.1')).toBe('connected');
    if (external) expect(await reach(external)).toBe('ECONNREFUSED');
  });

  it('answers only its own Host names, on every route and the WebSocket upgrade (DNS rebinding)', async () => {
    for (const path of ['/', '/healthz', '/metrics', '/api/agents', '/sync/bootstrap?scope=org:1', '/nope']) {
      const res = await rawRequest(port, { host: `evil.example:${port}`, path });
      expect(res.status, path).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'forbidden' } });
    }
    // The bridge once built its URL from Host: a Host carrying a path must not reach any handler.
    const injected = await rawRequest(port, {
      host: `localhost:${port}/sync/bootstrap?scope=org:1#`,
      path: '/api/x',
    });
    expect(injected.status).toBe(403);
    const upgrade = {
      path: `/sync?token=${server.info().devToken}`,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    };
    expect((await rawRequest(port, { ...upgrade, host: `evil.example:${port}` })).status).toBe(403);
    expect((await rawRequest(port, { ...upgrade, host: `localhost:${port}` })).status).toBe(101);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
      expect((await rawRequest(port, { host, path: '/healthz' })).status, host).toBe(200);
    }
  });

  it('answers CORS for ALLOWED_ORIGINS only', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.info().url}/api/agents`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization',
        },
      });
    expect((await preflight('http://localhost:5173')).headers.get('access-control-allow-origin')).toBe(
      'http://localhost:5173',
    );
    expect((await preflight('https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers unknown paths with a JSON 404', async () => {
    // With the console served, a path of its own gets the page; a reserved one nothing serves.
    const res = await fetch(`${server.info().url}/metrics/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'not_found' } });
  });
});

const OPERATOR_SECRET = 'operator-secret-operator-secret-0123456789';
/** A token for every org, signed with the operator's secret. */
const operatorToken = (sub: string) =>
  mintToken({ secret: OPERATOR_SECRET, sub, scopes: ['org:*'], ttl: 60 });

describe("standalone with the operator's SYNC_JWT_SECRET", () => {
  let db: TestDatabase;
  let dataDir: string;
  let distDir: string;
  let server: ReturnType<typeof createStandalone>;

  beforeAll(async () => {
    db = await createTestDatabase('standalone_secret');
    dataDir = mkdtempSync(join(tmpdir(), 'oas-standalone-secret-'));
    distDir = consoleDist();
    const config = loadStandaloneConfig({
      PORT: String(await freePort()),
      DATABASE_URL: db.url,
      SYNC_JWT_SECRET: OPERATOR_SECRET,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'silent',
      PG_POOL_MAX: '4',
      // More than the pool holds: what keeps writes their connections below is the reads' share
      // of the pool, not this gate (which bootstraps alone pass; delta pages, heads and the
      // gateway's own reads do not).
      MAX_CONCURRENT_BOOTSTRAPS: '8',
    });
    server = createStandalone({ config, log: silent, consoleDistDir: distDir });
    await server.start();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(distDir, { recursive: true, force: true });
  });

  it('embeds no token in the console, prints none and generates no dev secret', async () => {
    const page = await fetch(`${server.info().url}/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(embeddedToken(html)).toBeNull();
    expect(html).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
    expect(server.info().devToken).toBeUndefined();
    expect(existsSync(join(dataDir, 'dev-jwt-secret'))).toBe(false);
    const token = await operatorToken('ops');
    const res = await fetch(`${server.info().url}/sync/bootstrap?scope=org:${crypto.randomUUID()}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
  });
  it('reads and writes share the one pool that PG_POOL_MAX sizes', async () => {
    const token = await operatorToken('reader');
    const [write, ...reads] = await Promise.all([
      fetch(`${server.info().url}/api/agents`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ org_id: crypto.randomUUID(), name: 'Pooled' }),
      }),
      ...Array.from({ length: 12 }, () =>
        fetch(`${server.info().url}/sync/bootstrap?scope=org:${crypto.randomUUID()}`, {
          headers: { authorization: `Bearer ${token}` },
        }),
      ),
    ]);
    expect(write!.status).toBe(201);
    for (const res of reads) expect(res.status).toBe(200);
    const { rows } = await db.pool.query<{ application_name: string; n: number }>(
      `SELECT application_name, count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND application_name LIKE 'sync-standalone%'
       GROUP BY application_name`,
    );
    expect(rows.map((r) => r.application_name)).toEqual(['sync-standalone']);
    expect(rows[0]!.n).toBeGreaterThan(0);
    expect(rows[0]!.n).toBeLessThanOrEqual(4);
  });

  it('leaves writes their half of the pool while a flood of reads holds the other half', async () => {
    const token = await operatorToken('flood');
    /** Statements of the standalone server's pool waiting on a lock now. */
    const lockWaiters = async () => {
      const { rows } = await db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE application_name = 'sync-standalone' AND wait_event_type = 'Lock'`,
      );
      return rows[0]!.n;
    };
    const holder = await db.pool.connect();
    let reads: Promise<Response>[] = [];
    try {
      // An org's bootstrap reads its agents, then its payments: with payments locked, each read
      // holds its connection until the lock goes. Writing an agent does not touch payments.
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE payments IN ACCESS EXCLUSIVE MODE');
      reads = Array.from({ length: 8 }, () =>
        fetch(`${server.info().url}/sync/bootstrap?scope=org:${crypto.randomUUID()}`, {
          headers: { authorization: `Bearer ${token}` },
        }),
      );
      await expect.poll(lockWaiters).toBe(readConnections(4));
      // Without the share the reads would hold all four connections, and the write would fail
      // after the pool's 5 s checkout timeout.
      const write = await fetch(`${server.info().url}/api/agents`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ org_id: crypto.randomUUID(), name: 'Not starved' }),
      });
      expect(write.status).toBe(201);
      // Written while the reads still held their half.
      expect(await lockWaiters()).toBe(readConnections(4));
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    for (const res of await Promise.all(reads)) expect(res.status).toBe(200);
  });
});

describe.skipIf(process.getuid?.() !== 0)('standalone as root where postgres cannot enter', () => {
  it('stops with one sentence naming the folder and the fix, not a stack trace', async () => {
    const locked = mkdtempSync(join(tmpdir(), 'oas-locked-'));
    chmodSync(locked, 0o700);
    mkdirSync(join(locked, 'data'));
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'services/standalone/src/main.ts'], {
        cwd: ROOT,
        env: {
          ...process.env,
          PORT: String(await freePort()),
          EMBEDDED_PG_PORT: String(await freePort()),
          DATA_DIR: join(locked, 'data'),
          DATABASE_URL: '',
          SERVE_CONSOLE: 'false',
          LOG_LEVEL: 'silent',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d) => {
        output += d.toString();
      });
      child.stderr.on('data', (d) => {
        output += d.toString();
      });
      const code = await new Promise((resolve) => child.once('exit', resolve));
      expect(code).toBe(1);
      expect(output).toContain(`cannot enter ${locked}`);
      expect(output).toContain(`chmod o+x ${locked}`);
      expect(output).toContain('DATABASE_URL');
      expect(output).not.toMatch(/EACCES|\n\s+at /);
    } finally {
      rmSync(locked, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('standalone configuration', () => {
  it('stops with a message naming the bad variable', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/standalone/src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, PORT: 'eighty', DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d.toString();
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/PORT: .*"eighty"/);
  });

  it('binds loopback and answers loopback Host names unless told otherwise', () => {
    const config = loadStandaloneConfig({});
    expect(config.HOST).toBe('127.0.0.1');
    expect(config.ALLOWED_HOSTS).toBeUndefined();
    expect(config.ALLOWED_ORIGINS).toEqual([]);
    expect(loadStandaloneConfig({ ALLOWED_HOSTS: 'Sync.Example, box:9000' }).ALLOWED_HOSTS).toEqual([
      'sync.example',
      'box:9000',
    ]);
  });

  it('rejects a short SYNC_JWT_SECRET and a non-postgres DATABASE_URL', () => {
    expect(() => loadStandaloneConfig({ SYNC_JWT_SECRET: 'short' })).toThrow(/SYNC_JWT_SECRET/);
    expect(() => loadStandaloneConfig({ DATABASE_URL: 'mysql://x/y' })).toThrow(/DATABASE_URL/);
  });
});
