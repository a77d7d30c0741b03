import { startLocalStack } from './bench/local-stack';
import { silentProgress } from './driver/progress';
import { BOOTSTRAP_DEFAULTS, runBootstrap } from './driver/scenarios/bootstrap';
import { FANOUT_DEFAULTS, runFanout } from './driver/scenarios/fanout';
import { MUTATIONS_DEFAULTS, runMutations } from './driver/scenarios/mutations';
import { RECONNECT_STORM_DEFAULTS, runReconnectStorm } from './driver/scenarios/reconnect-storm';
import { formatSummary } from './driver/summary';
import { createSyncTarget } from './driver/sync-target';

const stack = await startLocalStack({ apiWorkers: 2, gateways: 2 });
const env = { workers: 2, progress: silentProgress };
try {
  const target = createSyncTarget({
    apiUrls: stack.apiUrls,
    gatewayUrls: stack.gatewayUrls,
    deltaUrl: stack.deltaUrl,
    secret: stack.secret,
  });
  const which = process.argv[2] ?? 'fanout';
  if (which === 'fanout')
    console.log(
      formatSummary(
        await runFanout(
          target,
          { ...FANOUT_DEFAULTS, connections: 100, scopes: 10, durationMs: 3000, eventsPerSecond: 100 },
          env,
        ),
      ),
    );
  if (which === 'mutations')
    console.log(
      formatSummary(
        await runMutations(target, { ...MUTATIONS_DEFAULTS, scopes: 5, vus: 8, durationMs: 3000 }, env),
      ),
    );
  if (which === 'storm')
    console.log(
      formatSummary(
        await runReconnectStorm(target, { ...RECONNECT_STORM_DEFAULTS, connections: 200, scopes: 10 }, env),
      ),
    );
  if (which === 'bootstrap')
    console.log(
      formatSummary(await runBootstrap(target, { ...BOOTSTRAP_DEFAULTS, records: 1000, wsClients: 5 }, env)),
    );
} finally {
  await stack.stop();
}
