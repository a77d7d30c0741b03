/**
 * Runs one peer node: `node --import tsx loadtest/peers/main.ts <kind> --port N [--redis URL]
 * [--prefix P]`. Prints `listening <port>` once it accepts connections; stops on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import { isPeerKind, PEER_KINDS } from './peer-kind';
import { startSocketIoPeer } from './socketio-redis';
import { startUwsLocalPeer } from './uws-local';
import { startWsRedisPeer } from './ws-redis';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', default: '0' },
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    prefix: { type: 'string', default: 'loadtest:' },
  },
});
const kind = positionals[0] ?? '';
if (!isPeerKind(kind)) {
  console.error(`usage: peers/main.ts <${PEER_KINDS.join('|')}> --port N [--redis URL] [--prefix P]`);
  process.exit(2);
}
const port = Number(values.port);
const redis = { redisUrl: values.redis, channelPrefix: values.prefix };
const node =
  kind === 'uws-local'
    ? await startUwsLocalPeer({ port })
    : kind === 'ws-redis'
      ? await startWsRedisPeer({ port, ...redis })
      : await startSocketIoPeer({ port, ...redis });
console.log(`listening ${node.port}`);
const stop = () => {
  node.stop().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
