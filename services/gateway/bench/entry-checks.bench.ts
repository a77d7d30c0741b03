import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { createAuth } from '@openagents/sync-server-kit';
import { busMessageProblem } from '../src/bus-message';
import { gatewayDefaults } from '../src/config';
import { ConnectionLimits } from '../src/connection-limits';

// `node --import tsx services/gateway/bench/entry-checks.bench.ts`: what the new entry checks
// cost next to the work they sit in front of, measured in the same run.
//  - an upgrade refused by the per-address limits (map lookups) vs verifying its token (HMAC);
//  - the bus message check vs the JSON.parse every Redis message already goes through.

const secret = 'bench-secret-bench-secret-bench-secret-00';
const auth = createAuth({ secret });

function time(label: string, runs: number, fn: () => void): number {
  for (let i = 0; i < Math.min(1000, runs); i++) fn();
  const start = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) fn();
  const ns = Number(process.hrtime.bigint() - start) / runs;
  console.log(`${label.padEnd(52)} ${ns.toFixed(0).padStart(8)} ns/op`);
  return ns;
}

async function timeAsync(label: string, runs: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 200; i++) await fn().catch(() => {});
  const start = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) await fn().catch(() => {});
  const ns = Number(process.hrtime.bigint() - start) / runs;
  console.log(`${label.padEnd(52)} ${ns.toFixed(0).padStart(8)} ns/op`);
  return ns;
}

console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const limits = new ConnectionLimits(
  gatewayDefaults({
    UPGRADE_RATE_PER_SECOND: 1,
    UPGRADE_BURST: 1,
    FAILED_AUTH_RATE_PER_SECOND: 1,
    MAX_CONNECTIONS_PER_IP: 1,
  }),
);
limits.admitIp('203.0.113.9', Date.now()); // exhausts the address: every later attempt is refused
let ipCounter = 0;
const refused = time('upgrade refused by per-address limits', 200_000, () => {
  limits.admitIp('203.0.113.9', Date.now());
});
const admitted = time('upgrade admitted (new address, LRU insert)', 200_000, () => {
  const ip = `10.0.${(ipCounter >> 8) & 255}.${ipCounter++ & 255}`;
  limits.admitIp(ip, Date.now());
  limits.releaseIp(ip);
});
const token = await auth.sign({ sub: 'u', scopes: ['*'] });
const forged = `${token.slice(0, -4)}AAAA`;
const verify = await timeAsync('token verified (jose HS256)', 20_000, () => auth.verify(token));
const verifyBad = await timeAsync('forged token refused (jose HS256)', 20_000, () => auth.verify(forged));

const scope = `agent:${randomUUID()}`;
const event = (id: number) => ({
  id,
  scope,
  model: 'Message',
  model_id: randomUUID(),
  action: 'insert',
  data: {
    id: randomUUID(),
    agent_id: randomUUID(),
    role: 'assistant',
    content: 'x'.repeat(200),
    created_at: new Date().toISOString(),
  },
  mutationId: null,
  created_at: new Date().toISOString(),
});
const message = { scope, events: [event(1), event(2), event(3)] };
const text = JSON.stringify(message);
const parse = time('JSON.parse of a 3-event bus message', 200_000, () => JSON.parse(text));
const parsed = JSON.parse(text);
const check = time('busMessageProblem on the same message', 200_000, () => busMessageProblem(parsed, scope));

console.log('');
console.log(
  `verify / refused-by-limits: ${(verify / refused).toFixed(0)}x; forged verify / refused: ${(verifyBad / refused).toFixed(0)}x`,
);
console.log(`admitted (LRU) / refused: ${(admitted / refused).toFixed(1)}x`);
console.log(`bus check / JSON.parse: ${((check / parse) * 100).toFixed(0)}% on top of the parse`);
