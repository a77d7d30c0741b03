import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { CONSOLE_DIST_DIR } from './build-console';
import type { SyncConsoleConfig } from './config';

/** One answer of the console's static handler, independent of any HTTP framework. */
export interface ConsoleAsset {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface ConsoleAssetsOptions {
  /** The built console; default `packages/console/dist` (see `ensureConsoleBuilt`). */
  distDir?: string;
  /**
   * Written into the page as `window.__SYNC_CONFIG__`, so the console connects without asking
   * for a token. A function is called per page load (e.g. to mint a fresh dev token).
   */
  config?: SyncConsoleConfig | (() => SyncConsoleConfig | undefined);
}

export interface ConsoleAssets {
  /**
   * The answer for a path, or undefined when the path is not the console's (`/api`, `/sync`,
   * `/healthz`, `/readyz`, `/metrics`), so the caller can route it elsewhere. Unknown paths
   * without a file extension get the page (client-side routing); unknown files get 404.
   */
  lookup(method: string, pathname: string): Promise<ConsoleAsset | undefined>;
  /** The same as a fetch-style handler: a `Response`, or undefined when the path is not the console's. */
  handle(request: Request): Promise<Response | undefined>;
}

/** Path prefixes that belong to the sync services, never to the console. */
export const RESERVED_PREFIXES = ['/api', '/sync', '/healthz', '/readyz', '/metrics'] as const;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * Serves the built console: hashed files under `/assets/` with a long cache, and the page itself
 * (never cached, since it may carry a token) with the config injected.
 *
 * @example
 * // Hono
 * const assets = createConsoleAssets({ config: { token: devToken } });
 * app.get('*', async (c) => (await assets.handle(c.req.raw)) ?? c.notFound());
 * // or any fetch-style router: `(request) => assets.handle(request)` (undefined: not the console's)
 */
export function createConsoleAssets(options: ConsoleAssetsOptions = {}): ConsoleAssets {
  const root = resolve(options.distDir ?? CONSOLE_DIST_DIR);
  const files = new Map<string, Promise<Uint8Array | null>>();
  const readCached = (file: string) => {
    let entry = files.get(file);
    if (!entry) {
      entry = readFile(file).then(
        (buffer) => new Uint8Array(buffer),
        () => null,
      );
      files.set(file, entry);
      // A missing file is not remembered, so a build that lands later is picked up.
      entry.then((body) => body === null && files.delete(file));
    }
    return entry;
  };

  const page = async (): Promise<ConsoleAsset> => {
    const template = await readCached(join(root, 'index.html'));
    if (!template)
      return text(
        503,
        'The console is not built yet: run `node --import tsx packages/console/scripts/build.ts`.',
      );
    const config = typeof options.config === 'function' ? options.config() : options.config;
    const { html, scriptHash } = injectConfig(new TextDecoder().decode(template), config);
    return {
      status: 200,
      headers: {
        'content-type': CONTENT_TYPES['.html']!,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'content-security-policy': [
          "default-src 'self'",
          `script-src 'self'${scriptHash ? ` '${scriptHash}'` : ''}`,
          "style-src 'self' 'unsafe-inline'",
          "img-src 'self' data:",
          "connect-src 'self' http: https: ws: wss:",
          "frame-ancestors 'none'",
          "base-uri 'none'",
        ].join('; '),
      },
      body: new TextEncoder().encode(html),
    };
  };

  const lookup = async (method: string, pathname: string): Promise<ConsoleAsset | undefined> => {
    if (isReserved(pathname)) return undefined;
    if (method !== 'GET' && method !== 'HEAD') {
      return {
        ...text(405, 'Method not allowed'),
        headers: { ...text(405, '').headers, allow: 'GET, HEAD' },
      };
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return text(400, 'Bad path');
    }
    if (decoded.includes('\0')) return text(400, 'Bad path');
    if (decoded === '/' || decoded === '/index.html') return page();
    const file = resolve(root, `.${decoded}`);
    if (!file.startsWith(root + sep)) return text(404, 'Not found');
    const ext = extname(file);
    if (!ext) return page();
    const type = CONTENT_TYPES[ext];
    const body = type ? await readCached(file) : null;
    if (!body || !type) return text(404, 'Not found');
    const hashed = decoded.startsWith('/assets/');
    return {
      status: 200,
      headers: {
        'content-type': type,
        'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
        'x-content-type-options': 'nosniff',
      },
      body,
    };
  };

  return {
    lookup,
    async handle(request) {
      const asset = await lookup(request.method, new URL(request.url).pathname);
      if (!asset) return undefined;
      const body = request.method === 'HEAD' ? null : (asset.body as Uint8Array<ArrayBuffer>);
      return new Response(body, { status: asset.status, headers: asset.headers });
    },
  };
}

/**
 * Writes `window.__SYNC_CONFIG__ = {...}` into the page's head. The JSON is escaped so no value
 * can close the script tag, and the script's hash is returned for the Content-Security-Policy.
 */
export function injectConfig(
  html: string,
  config: SyncConsoleConfig | undefined,
): { html: string; scriptHash: string | null } {
  if (!config) return { html, scriptHash: null };
  const json = JSON.stringify({ url: config.url, token: config.token })
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
  const script = `window.__SYNC_CONFIG__ = ${json};`;
  const scriptHash = `sha256-${createHash('sha256').update(script).digest('base64')}`;
  const tag = `<script>${script}</script>`;
  const at = html.indexOf('</head>');
  return { html: at === -1 ? tag + html : html.slice(0, at) + tag + html.slice(at), scriptHash };
}

function isReserved(pathname: string): boolean {
  return RESERVED_PREFIXES.some(
    (p) => pathname === p || pathname.startsWith(`${p}/`) || pathname.startsWith(`${p}?`),
  );
}

function text(status: number, message: string): ConsoleAsset {
  return {
    status,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' },
    body: new TextEncoder().encode(message),
  };
}
