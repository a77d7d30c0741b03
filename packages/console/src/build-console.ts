import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The console package folder (holds `index.html` and `vite.config.ts`). */
export const CONSOLE_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Where the browser build lands; git-ignored. */
export const CONSOLE_DIST_DIR = join(CONSOLE_ROOT, 'dist');

const STAMP = '.source-stamp';

/**
 * The folders whose sources end up in the bundle: a newer file in any of them makes the build
 * stale. The client, react and protocol packages are bundled from source, so they count too.
 */
const SOURCE_PATHS = [
  join(CONSOLE_ROOT, 'src'),
  join(CONSOLE_ROOT, 'index.html'),
  join(CONSOLE_ROOT, 'vite.config.ts'),
  join(CONSOLE_ROOT, '..', 'client', 'src'),
  join(CONSOLE_ROOT, '..', 'react', 'src'),
  join(CONSOLE_ROOT, '..', 'protocol', 'src'),
];

export interface BuildConsoleOptions {
  /** Output folder; default `packages/console/dist`. */
  distDir?: string;
  /** Vite's log level; default `warn`. */
  logLevel?: 'info' | 'warn' | 'error' | 'silent';
}

export interface BuildResult {
  distDir: string;
  /** False when an up-to-date build was already there. */
  built: boolean;
  durationMs: number;
}

/**
 * Builds the console with Vite into `distDir`. The build goes to a scratch folder first and is
 * renamed into place, so a server never serves a half-written `dist/` and two processes building
 * at once do not corrupt each other's output.
 */
export async function buildConsole(options: BuildConsoleOptions = {}): Promise<BuildResult> {
  const started = performance.now();
  const distDir = options.distDir ?? CONSOLE_DIST_DIR;
  const stamp = newestSourceMtime();
  // A sibling of distDir, so the final rename stays on one filesystem.
  const scratch = join(dirname(distDir), `.console-build-${randomBytes(6).toString('hex')}`);
  mkdirSync(scratch, { recursive: true });
  try {
    const { build } = await import('vite');
    await build({
      configFile: join(CONSOLE_ROOT, 'vite.config.ts'),
      mode: 'production',
      logLevel: options.logLevel ?? 'warn',
      build: { outDir: scratch, emptyOutDir: true },
    });
    writeFileSync(join(scratch, STAMP), String(stamp));
    rmSync(distDir, { recursive: true, force: true });
    try {
      renameSync(scratch, distDir);
    } catch (error) {
      // Another process renamed its build into place first; theirs is just as good.
      if (!existsSync(join(distDir, 'index.html'))) throw error;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return { distDir, built: true, durationMs: Math.round(performance.now() - started) };
}

/**
 * Makes sure `distDir` holds a build of the current sources, building it if it is missing or
 * older than any source file. Call it once at start-up, before serving `/`.
 *
 * @example
 * const { distDir } = await ensureConsoleBuilt();
 * const assets = createConsoleAssets({ distDir, config: { token } });
 */
export async function ensureConsoleBuilt(options: BuildConsoleOptions = {}): Promise<BuildResult> {
  const started = performance.now();
  const distDir = options.distDir ?? CONSOLE_DIST_DIR;
  if (isConsoleBuildFresh(distDir)) {
    return { distDir, built: false, durationMs: Math.round(performance.now() - started) };
  }
  return buildConsole(options);
}

/** True when `distDir` has an index.html built from sources no older than the current ones. */
export function isConsoleBuildFresh(distDir: string = CONSOLE_DIST_DIR): boolean {
  try {
    if (!existsSync(join(distDir, 'index.html'))) return false;
    const built = Number(readFileSync(join(distDir, STAMP), 'utf8'));
    return Number.isFinite(built) && built >= newestSourceMtime();
  } catch {
    return false;
  }
}

function newestSourceMtime(): number {
  let newest = 0;
  const visit = (path: string) => {
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(path);
    } catch {
      return;
    }
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path)) if (entry !== 'node_modules') visit(join(path, entry));
    } else if (!/\.test\.tsx?$/.test(path)) {
      newest = Math.max(newest, Math.floor(stat.mtimeMs));
    }
  };
  for (const path of SOURCE_PATHS) visit(path);
  return newest;
}
