/**
 * The load driver: `node --import tsx loadtest/driver/main.ts <scenario> --base-url … --secret …`.
 * Runs one scenario with client connections spread over worker threads, shows a live line on
 * stderr (TTY only), prints a k6-like summary and exits 1 when a correctness check failed.
 */
import { writeFileSync } from 'node:fs';
import { unreachable } from '@openagents/sync-protocol';
import { type DriverArgs, parseDriverArgs, USAGE } from './args';
import { createPeerTarget } from './peer-target';
import { createProgress } from './progress';
import { passed, type ScenarioResult } from './result';
import { BOOTSTRAP_DEFAULTS, runBootstrap } from './scenarios/bootstrap';
import { FANOUT_DEFAULTS, runFanout } from './scenarios/fanout';
import { MUTATIONS_DEFAULTS, runMutations } from './scenarios/mutations';
import { RECONNECT_STORM_DEFAULTS, runReconnectStorm } from './scenarios/reconnect-storm';
import type { RunEnv } from './scenarios/run-env';
import { runSoak, SOAK_DEFAULTS } from './scenarios/soak';
import { runStream, STREAM_DEFAULTS } from './scenarios/stream';
import { formatSummary } from './summary';
import { createSyncTarget, type SyncTarget } from './sync-target';
import type { LoadTarget } from './target';

async function run(args: DriverArgs): Promise<ScenarioResult> {
  const env: RunEnv = { workers: args.workers, progress: createProgress() };
  let target: LoadTarget;
  let sync: SyncTarget | undefined;
  if (args.target.kind === 'peer') {
    target = createPeerTarget(args.target.peer, args.target.urls);
  } else {
    sync = createSyncTarget(args.target);
    target = sync;
  }
  const duration = args.durationMs === undefined ? {} : { durationMs: args.durationMs };
  switch (args.scenario) {
    case 'fanout': {
      const mode = args.mode ?? 'rate';
      return runFanout(
        target,
        {
          ...FANOUT_DEFAULTS,
          ...duration,
          mode,
          connections: args.vus ?? FANOUT_DEFAULTS.connections,
          scopes: args.scopes ?? FANOUT_DEFAULTS.scopes,
          eventsPerSecond: args.rate ?? FANOUT_DEFAULTS.eventsPerSecond,
          batch: args.batch ?? FANOUT_DEFAULTS.batch,
        },
        env,
      );
    }
    case 'mutations': {
      const options = {
        ...MUTATIONS_DEFAULTS,
        ...duration,
        vus: args.vus ?? MUTATIONS_DEFAULTS.vus,
        scopes: args.scopes ?? MUTATIONS_DEFAULTS.scopes,
        batch: args.batch ?? MUTATIONS_DEFAULTS.batch,
      };
      return runMutations(sync!, args.rate ? { ...options, ratePerSecond: args.rate } : options, env);
    }
    case 'reconnect-storm':
      return runReconnectStorm(
        target,
        {
          ...RECONNECT_STORM_DEFAULTS,
          connections: args.vus ?? RECONNECT_STORM_DEFAULTS.connections,
          scopes: args.scopes ?? RECONNECT_STORM_DEFAULTS.scopes,
        },
        env,
      );
    case 'bootstrap':
      return runBootstrap(
        sync!,
        { ...BOOTSTRAP_DEFAULTS, records: args.records ?? BOOTSTRAP_DEFAULTS.records },
        env,
      );
    case 'soak': {
      const durationMs = args.durationMs ?? SOAK_DEFAULTS.durationMs;
      return runSoak(
        target,
        {
          ...SOAK_DEFAULTS,
          durationMs,
          // Without --ramp, a sixth of the run (an hour ramps over the k6 soak's ten minutes).
          rampMs: args.rampMs ?? Math.min(SOAK_DEFAULTS.rampMs, durationMs / 6),
          connections: args.vus ?? SOAK_DEFAULTS.connections,
          scopes: args.scopes ?? SOAK_DEFAULTS.scopes,
          eventsPerSecond: args.rate ?? SOAK_DEFAULTS.eventsPerSecond,
          batch: args.batch ?? SOAK_DEFAULTS.batch,
          churnPerMinute: args.churnPerMinute ?? SOAK_DEFAULTS.churnPerMinute,
        },
        env,
      );
    }
    case 'stream':
      if (!sync) throw new Error('the stream scenario needs the sync stack');
      return runStream(
        sync,
        {
          ...STREAM_DEFAULTS,
          replies: args.replies ?? STREAM_DEFAULTS.replies,
          tokensPerSecond: args.tokensPerSecond ?? STREAM_DEFAULTS.tokensPerSecond,
          tokens: args.tokens ?? STREAM_DEFAULTS.tokens,
          viewers: args.viewers ?? STREAM_DEFAULTS.viewers,
          tokensPerAppend: args.tokensPerAppend ?? STREAM_DEFAULTS.tokensPerAppend,
          mode: args.write ?? STREAM_DEFAULTS.mode,
          upload: args.upload ?? STREAM_DEFAULTS.upload,
          viewerTransport: args.viewerClient ?? STREAM_DEFAULTS.viewerTransport,
        },
        env,
      );
    default:
      return unreachable(args.scenario);
  }
}

let args: DriverArgs;
try {
  args = parseDriverArgs(process.argv.slice(2));
} catch (err) {
  console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`);
  process.exit(2);
}
const result = await run(args);
if (args.out) writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
if (args.json) console.log(JSON.stringify(result, null, 2));
else console.log(`\n${formatSummary(result)}\n`);
process.exit(passed(result) ? 0 : 1);
