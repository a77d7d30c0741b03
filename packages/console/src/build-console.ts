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
  /** Loads Vite; injectable so tests can stand in for an install without it. */
  loadVite?: () => Promise<Pick<typeof import('vite'), 'build'>>;
}

export interface BuildResult {
  distDir: string;
  /** False when an existing build was used. */
  built: boolean;
  /**
   * True when the existing build is older than the sources but could not be rebuilt because
   * Vite (a dev dependency) is not installed: it is served as it is.
   */
  stale: boolean;
  durationMs: number;
}

/** Thrown by `buildConsole` when Vite cannot be loaded (a production-only install). */
export class ViteUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super(
      'Vite is not installed, so the console cannot be built here: build it where dev dependencies ' +
        'are installed (node --import tsx packages/console/scripts/build.ts) and ship dist/.',
      options,
    );
    this.name = 'ViteUnavailableError';
  }
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
  let vite: Pick<typeof import('vite'), 'build'>;
  try {
    vite = await (options.loadVite ?? (() => import('vite')))();
  } catch (cause) {
    throw new ViteUnavailableError({ cause });
  }
  // A sibling of distDir, so the final rename stays on one filesystem.
  const scratch = join(dirname(distDir), `.console-build-${randomBytes(6).toString('hex')}`);
  mkdirSync(scratch, { recursive: true });
  try {
    await vite.build({
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
  return { distDir, built: true, stale: false, durationMs: Math.round(performance.now() - started) };
}

/**
 * Makes sure `distDir` holds a build of the current sources, building it if it is missing or
 * older than any source file. Call it once at start-up, before serving `/`. Without Vite (a
 * production-only install) an existing build is used as it is (`stale: true` if older than the
 * sources), and a missing one is a `ViteUnavailableError`.
 *
 * @example
 * const { distDir } = await ensureConsoleBuilt();
 * const assets = createConsoleAssets({ distDir, config: { token } });
 */
export async function ensureConsoleBuilt(options: BuildConsoleOptions = {}): Promise<BuildResult> {
  const started = performance.now();
  const distDir = options.distDir ?? CONSOLE_DIST_DIR;
  const elapsed = () => Math.round(performance.now() - started);
  if (isConsoleBuildFresh(distDir)) return { distDir, built: false, stale: false, durationMs: elapsed() };
  try {
    return await buildConsole(options);
  } catch (error) {
    if (error instanceof ViteUnavailableError && existsSync(join(distDir, 'index.html'))) {
      return { distDir, built: false, stale: true, durationMs: elapsed() };
    }
    throw error;
  }
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
