import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { isPeerKind, PEER_KINDS, type PeerKind } from '../peers/peer-kind';

export const SCENARIOS = ['fanout', 'mutations', 'reconnect-storm', 'bootstrap', 'soak', 'stream'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

/** Where the load goes: the sync stack (one origin, or explicit services) or a peer. */
export type TargetArgs =
  | {
      kind: 'sync';
      apiUrls: string[];
      gatewayUrls: string[];
      deltaUrl: string;
      secret?: string;
      token?: string;
    }
  | { kind: 'peer'; peer: PeerKind; urls: string[] };

export interface DriverArgs {
  scenario: ScenarioName;
  target: TargetArgs;
  workers: number;
  /** Connections (fanout, reconnect-storm, soak) or writers (mutations). */
  vus?: number;
  scopes?: number;
  /** Seconds of load; for soak the whole run, ramp included. */
  durationMs?: number;
  /** Soak: how long subscribers take to connect, before publishing starts. */
  rampMs?: number;
  /** Soak: fraction of the connections that drop and resume per minute (`--churn` is in %). */
  churnPerMinute?: number;
  rate?: number;
  batch?: number;
  mode?: 'rate' | 'saturate';
  records?: number;
  /** Stream: concurrent replies, tokens/s each, tokens per reply, viewers per reply, how tokens are written. */
  replies?: number;
  tokensPerSecond?: number;
  tokens?: number;
  viewers?: number;
  /** Stream, driver upload: tokens the writer batches into one append. */
  tokensPerAppend?: number;
  write?: 'append' | 'patch';
  /** Stream, append: the driver's own streaming upload, or the client package's stream writer. */
  upload?: 'driver' | 'client';
  /** Stream: the viewers' WebSocket client (lean-websocket.ts, or the `ws` package offering permessage-deflate). */
  viewerClient?: 'lean' | 'ws';
  out?: string;
  json: boolean;
}

export const USAGE = `usage: node --import tsx loadtest/driver/main.ts <${SCENARIOS.join('|')}> [options]

target (the sync stack):
  --base-url URL        one origin behind a load balancer (api, /sync and delta)
  --api-url A[,B]       mutation workers, when not behind one origin
  --gateway-url A[,B]   gateways (WebSocket /sync, /metrics)
  --delta-url URL       delta service
  --secret S            SYNC_JWT_SECRET, to sign tokens (or env SYNC_JWT_SECRET)
  --token T             a ready-made token instead of a secret (or env TOKEN)
target (a peer, fanout only):
  --peer ${PEER_KINDS.join('|')} --peer-url A[,B]
load:
  --vus N               connections (fanout, reconnect-storm, soak) or writers (mutations)
  --scopes N            scopes to spread over
  --duration S          seconds of load (soak: the whole run, ramp included; default 3600)
  --rate N              events (fanout, soak) or writes (mutations) per second; fanout default mode
  --mode rate|saturate  fanout: fixed rate, or closed-loop publishers as fast as acknowledged
  --batch N             events per write (one transaction)
  --records N           bootstrap: records in the scope
  --replies N           stream: replies streaming at once, each in its own agent (default 50)
  --tokens-per-second N stream: tokens per second of each reply (default 30)
  --tokens N            stream: tokens per reply (default 150)
  --viewers N           stream: WebSocket viewers of each reply (default 3)
  --tokens-per-append N stream, driver upload: tokens the writer batches into one append (default 2,
                        as the client's stream writer does at 30 tokens/s over its 40 ms window)
  --write append|patch  stream: the stream writer's appends, or one whole-text PATCH per token
  --viewer-client lean|ws stream: the viewers' WebSocket client: the driver's lean one (default,
                        offers no extension), or the ws package offering permessage-deflate as
                        browsers do (use it against gateways that compress)
  --upload driver|client stream, append: the driver's own NDJSON upload (default, cheap), or
                        the client package's stream writer (fetch + web streams per reply)
  --ramp S              soak: seconds over which subscribers connect (default a sixth of the run, ≤ 600)
  --churn P             soak: % of connections that drop and resume from their cursors per minute (default 3)
  --workers N           worker threads for client connections (default: cores)
  --out FILE            write the JSON result there
  --json                print the JSON result on stdout instead of the summary`;

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim().replace(/\/$/, ''))
    .filter(Boolean);
}

function positive(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${value}"`);
  return n;
}

function nonNegative(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number ≥ 0, got "${value}"`);
  return n;
}

/** Parses the command line; throws an Error with a message meant for the user. */
export function parseDriverArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): DriverArgs {
  const { positionals, values } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      'base-url': { type: 'string' },
      'api-url': { type: 'string' },
      'gateway-url': { type: 'string' },
      'delta-url': { type: 'string' },
      secret: { type: 'string' },
      token: { type: 'string' },
      peer: { type: 'string' },
      'peer-url': { type: 'string' },
      vus: { type: 'string' },
      scopes: { type: 'string' },
      duration: { type: 'string' },
      rate: { type: 'string' },
      mode: { type: 'string' },
      batch: { type: 'string' },
      records: { type: 'string' },
      replies: { type: 'string' },
      'tokens-per-second': { type: 'string' },
      tokens: { type: 'string' },
      viewers: { type: 'string' },
      'tokens-per-append': { type: 'string' },
      write: { type: 'string' },
      upload: { type: 'string' },
      'viewer-client': { type: 'string' },
      ramp: { type: 'string' },
      churn: { type: 'string' },
      workers: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const scenario = positionals[0];
  if (!scenario || !(SCENARIOS as readonly string[]).includes(scenario)) {
    throw new Error(`unknown scenario "${scenario ?? ''}"; one of ${SCENARIOS.join(', ')}`);
  }
  let target: TargetArgs;
  if (values.peer !== undefined) {
    if (!isPeerKind(values.peer)) throw new Error(`--peer must be one of ${PEER_KINDS.join(', ')}`);
    if (scenario !== 'fanout') throw new Error('peers only take part in the fanout scenario');
    const urls = list(values['peer-url']);
    if (urls.length === 0) throw new Error('--peer needs --peer-url');
    target = { kind: 'peer', peer: values.peer, urls };
  } else {
    const base = list(values['base-url'] ?? env.BASE_URL);
    const apiUrls = list(values['api-url']).length ? list(values['api-url']) : base;
    const gatewayUrls = list(values['gateway-url']).length ? list(values['gateway-url']) : base;
    const deltaUrl = list(values['delta-url'])[0] ?? base[0];
    if (apiUrls.length === 0 || gatewayUrls.length === 0 || !deltaUrl) {
      throw new Error('give --base-url (or --api-url, --gateway-url and --delta-url)');
    }
    const secret = values.secret ?? env.SYNC_JWT_SECRET;
    const token = values.token ?? env.TOKEN;
    if (!secret && !token) throw new Error('give --secret (SYNC_JWT_SECRET) or --token (TOKEN)');
    target = { kind: 'sync', apiUrls, gatewayUrls, deltaUrl };
    if (secret) target.secret = secret;
    if (token) target.token = token;
  }
  const mode = values.mode;
  if (mode !== undefined && mode !== 'rate' && mode !== 'saturate')
    throw new Error('--mode must be rate or saturate');
  const duration = positive('duration', values.duration);
  const ramp = positive('ramp', values.ramp);
  if (ramp !== undefined && duration !== undefined && ramp >= duration) {
    throw new Error('--ramp must be shorter than --duration (the whole run)');
  }
  const churn = nonNegative('churn', values.churn);
  const write = values.write;
  if (write !== undefined && write !== 'append' && write !== 'patch')
    throw new Error('--write must be append or patch');
  const upload = values.upload;
  if (upload !== undefined && upload !== 'driver' && upload !== 'client')
    throw new Error('--upload must be driver or client');
  const viewerClient = values['viewer-client'];
  if (viewerClient !== undefined && viewerClient !== 'lean' && viewerClient !== 'ws')
    throw new Error('--viewer-client must be lean or ws');
  const args: DriverArgs = {
    scenario: scenario as ScenarioName,
    target,
    workers: Math.floor(positive('workers', values.workers) ?? Math.max(1, availableParallelism())),
    json: values.json,
  };
  const vus = positive('vus', values.vus);
  const scopes = positive('scopes', values.scopes);
  const rate = positive('rate', values.rate);
  const batch = positive('batch', values.batch);
  const records = positive('records', values.records);
  if (vus !== undefined) args.vus = Math.floor(vus);
  if (scopes !== undefined) args.scopes = Math.floor(scopes);
  if (duration !== undefined) args.durationMs = duration * 1000;
  if (rate !== undefined) args.rate = rate;
  if (batch !== undefined) args.batch = Math.floor(batch);
  if (records !== undefined) args.records = Math.floor(records);
  if (ramp !== undefined) args.rampMs = ramp * 1000;
  if (churn !== undefined) args.churnPerMinute = churn / 100;
  if (mode !== undefined) args.mode = mode;
  if (write !== undefined) args.write = write;
  if (upload !== undefined) args.upload = upload;
  if (viewerClient !== undefined) args.viewerClient = viewerClient;
  for (const [name, key] of [
    ['replies', 'replies'],
    ['tokens-per-second', 'tokensPerSecond'],
    ['tokens', 'tokens'],
    ['viewers', 'viewers'],
    ['tokens-per-append', 'tokensPerAppend'],
  ] as const) {
    const n = positive(name, values[name]);
    if (n !== undefined) args[key] = key === 'tokensPerSecond' ? n : Math.floor(n);
  }
  if (values.out !== undefined) args.out = values.out;
  return args;
}
