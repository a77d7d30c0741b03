import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';

// `node --import tsx services/gateway/bench/append-path.bench.ts [<baseline checkout>]`: the
// gateway's own JavaScript per received append, in one process, without sockets: each round
// every scope gets one small append event as the Redis bus hands it over (the payload text,
// parsed), then the tick's flush runs the ordering checks and fans the batch out through the real
// FrameWriter to 3 live sockets per scope (uWS `publish` and the sockets are stand-ins that only
// count). What it leaves out — Redis reads, uWS's writes, the syscalls — is what plain uWS pays
// too (append-fanout.bench.ts measures the whole processes); what it keeps is what this code adds.
//
// With a second checkout's root as argument (e.g. `git archive main` unpacked, node_modules
// linked), its gateway modules run the same rounds in the same process, alternating, so the two
// are compared at the same moment of this shared machine. CPU from process.cpuUsage (user + sys).

const SCOPES = Number(process.env.APPEND_SCOPES ?? 300);
const VIEWERS = 3;
const ROUNDS = Number(process.env.APPEND_ROUNDS ?? 150);
const REPEATS = Number(process.env.APPEND_REPEATS ?? 12);

interface Path {
  name: string;
  /** One round: a message per scope, then the tick's flush. */
  round(): Promise<void>;
  published: () => number;
}

async function buildPath(name: string, root: string): Promise<Path> {
  const at = (file: string) => import(pathToFileURL(`${root}/services/gateway/src/${file}`).href);
  const { ScopeStream } = await at('scope-stream.ts');
  const { FrameWriter } = await at('frame-writer.ts');
  const { ConnectionRegistry } = await at('connection-registry.ts');
  const { SlowConsumerPolicy } = await at('slow-consumer.ts');
  const { createGatewayMetrics } = await at('metrics.ts');
  const kit = await import(pathToFileURL(`${root}/packages/server-kit/src/index.ts`).href);
  const registry = kit.createRegistry(`append-path-${name}`, { defaultMetrics: false });
  const metrics = createGatewayMetrics(registry);
  const log = kit.createLogger({ name: 'append-path', level: 'silent' });
  const connections = new ConnectionRegistry();
  let published = 0;
  const app = {
    publish: (_topic: string, message: string | Buffer) => {
      published += typeof message === 'string' ? message.length : message.byteLength;
      return true;
    },
  };
  const slowConsumers = new SlowConsumerPolicy({ connections, metrics, log, maxBackpressureBytes: 1 << 20 });
  const writer = new FrameWriter({ app, connections, metrics, slowConsumers, failed: () => {} });
  const never = () => new Promise(() => {});
  const reads = { resume: never, fresh: never, bootstrap: never, heads: never };
  const bus = kit.createMemoryBus();
  const streams: {
    scope: string;
    stream: { receive(m: unknown, raw?: string): void };
    id: number;
    head: string;
  }[] = [];
  for (let s = 0; s < SCOPES; s++) {
    const scope = `agent:${randomUUID()}`;
    const stream = new ScopeStream(scope, {
      bus,
      reads,
      metrics,
      log,
      holdMs: 100,
      fanOut: (st: { scope: string }, events: unknown[]) => writer.fanOut(st.scope, events),
    });
    await stream.ready;
    stream.anchor(0);
    for (let v = 0; v < VIEWERS; v++) {
      const ud = { id: 0, catchUpBytes: 0 };
      const ws = { getUserData: () => ud, getBufferedAmount: () => 0, subscribe() {}, unsubscribe() {} };
      connections.opened(ws);
      connections.joinTopic(ws, scope);
    }
    const modelId = randomUUID();
    const head = `,"scope":"${scope}","model":"Message","model_id":"${modelId}","action":"append","data":{"field":"content","offset":`;
    streams.push({ scope, stream, id: 0, head });
  }
  return {
    name,
    published: () => published,
    async round() {
      const iso = new Date().toISOString();
      for (const s of streams) {
        s.id++;
        const event = `{"id":${s.id}${s.head}${(s.id - 1) * 4},"text":"tok ","updated_at":"${iso}"},"mutationId":null,"created_at":"${iso}"}`;
        // As the Redis bus does: the payload's text, parsed.
        const raw = Buffer.from(`{"scope":"${s.scope}","events":[${event}]}`).toString('utf8');
        s.stream.receive(JSON.parse(raw), raw);
      }
      await new Promise((r) => setImmediate(r));
    },
  };
}

const here = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
const paths = [await buildPath('this checkout', here)];
if (process.argv[2]) paths.push(await buildPath('baseline', process.argv[2]));
for (const p of paths) for (let i = 0; i < 50; i++) await p.round(); // warm-up (JIT)
const cpu = new Map(paths.map((p) => [p.name, [] as number[]]));
for (let r = 0; r < REPEATS; r++) {
  // Alternating which goes first, so neither always pays the other's garbage collection.
  for (const p of r % 2 === 0 ? paths : [...paths].reverse()) {
    const before = process.cpuUsage();
    for (let i = 0; i < ROUNDS; i++) await p.round();
    const used = process.cpuUsage(before);
    cpu.get(p.name)!.push((used.user + used.system) / (ROUNDS * SCOPES));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `append path: ${SCOPES} scopes × ${VIEWERS} live sockets, one append per scope per round, ${ROUNDS} rounds × ${REPEATS}; load average ${loadavg()[0]!.toFixed(1)}`,
);
const base = median(cpu.get(paths.at(-1)!.name)!);
console.table(
  paths.map((p) => {
    const m = median(cpu.get(p.name)!);
    return {
      code: p.name,
      'µs CPU / received event (median)': m.toFixed(2),
      'µs CPU / delivery': (m / VIEWERS).toFixed(2),
      runs: cpu
        .get(p.name)!
        .map((x) => x.toFixed(1))
        .join(' '),
      'vs last': `${(m / base).toFixed(2)}×`,
    };
  }),
);
process.exit(0);
