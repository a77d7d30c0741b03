import { connect, type Socket } from 'node:net';
import { tokenFor } from '../../../test/support/tokens';
import { clientFrame } from './fanout-clients';

// Child process of the connection-memory phase: holds idle subscribed connections. Each is a
// minimal WebSocket client on a raw TCP socket (see fanout-clients.ts) with its own token (its
// own subject: a gateway keeps one principal per connection, as in production), bound to its own
// local address so that more connections than one address has ephemeral ports can be opened.
// It answers pings and otherwise only looks for the `subscribed` acknowledgement (with deflate
// negotiated, frames arrive compressed: the second text frame, after `bootstrap`, is taken as it).

export type ClientsCommand = {
  cmd: 'connect';
  /** Echoed in the report: a process may be given several commands at once. */
  id: number;
  port: number;
  localAddress: string;
  /** Connection numbers [from, to): connection i subscribes scopes[i % scopes.length] as `sub-i`. */
  from: number;
  to: number;
  scopes: string[];
  /** Offer permessage-deflate (and refuse an upgrade that does not accept it). */
  deflate?: boolean;
};
export type ClientsReport = { type: 'connected'; id: number; subscribed: number; failed: number };

const SUBSCRIBED = Buffer.from('"type":"subscribed"');
const CONNECT_ATTEMPTS = 3;
const sockets: Socket[] = [];

/** Complete text frames (opcode 1) at the start of `data`, and the bytes they take. */
function textFrames(data: Buffer): { count: number; used: number } {
  let count = 0;
  let at = 0;
  while (at + 2 <= data.length) {
    let length = data[at + 1]! & 0x7f;
    let header = 2;
    if (length === 126) {
      if (at + 4 > data.length) break;
      length = data.readUInt16BE(at + 2);
      header = 4;
    } else if (length === 127) {
      if (at + 10 > data.length) break;
      length = Number(data.readBigUInt64BE(at + 2));
      header = 10;
    }
    if (at + header + length > data.length) break;
    if ((data[at]! & 0x0f) === 0x1) count++;
    at += header + length;
  }
  return { count, used: at };
}

function open(
  port: number,
  localAddress: string,
  token: string,
  scope: string,
  deflate: boolean,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    let upgraded = false;
    const fail = () => {
      resolve(false);
      socket.destroy();
    };
    socket.setTimeout(30_000, fail);
    socket.on('error', fail);
    // Closed by the server before the acknowledgement (a refused or timed-out upgrade): without
    // this the connection's promise never settles and the whole batch waits forever.
    socket.on('close', fail);
    socket.on('connect', () => {
      socket.write(
        `GET /sync?token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
          (deflate ? 'Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n' : '') +
          '\r\n',
      );
    });
    let pending = Buffer.alloc(0);
    let texts = 0;
    socket.on('data', (data: Buffer) => {
      if (!upgraded) {
        const head = data.toString('latin1');
        if (!head.slice(0, 12).includes(' 101')) return fail();
        if (deflate && !/sec-websocket-extensions: permessage-deflate/i.test(head)) return fail();
        upgraded = true;
        socket.write(clientFrame(0x1, Buffer.from(JSON.stringify({ type: 'subscribe', scope }))));
        const end = data.indexOf('\r\n\r\n');
        data = data.subarray(end < 0 ? data.length : end + 4);
      }
      if (deflate) {
        pending = Buffer.concat([pending, data]);
        const { count, used } = textFrames(pending);
        texts += count;
        pending = pending.subarray(used);
        if (texts >= 2) {
          socket.setTimeout(0);
          sockets.push(socket);
          resolve(true);
          socket.removeAllListeners('data');
          socket.on('data', (more: Buffer) => {
            if ((more[0]! & 0x0f) === 0x9 && more.length >= 2) {
              socket.write(clientFrame(0xa, more.subarray(2, 2 + (more[1]! & 0x7f))));
            }
          });
        }
        return;
      }
      // Pings are small and arrive alone: answer them with a pong carrying the same payload.
      if ((data[0]! & 0x0f) === 0x9 && data.length >= 2) {
        socket.write(clientFrame(0xa, data.subarray(2, 2 + (data[1]! & 0x7f))));
      }
      if (data.includes(SUBSCRIBED)) {
        socket.setTimeout(0);
        sockets.push(socket);
        resolve(true);
      }
    });
  });
}

process.on('message', async (command: ClientsCommand) => {
  let subscribed = 0;
  let failed = 0;
  let next = command.from;
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < command.to) {
        const i = next++;
        const scope = command.scopes[i % command.scopes.length]!;
        const token = await tokenFor([scope], `sub-${i}`);
        // A connection refused under load (the machine is shared) is tried again, a few times.
        let ok = false;
        for (let attempt = 0; attempt < CONNECT_ATTEMPTS && !ok; attempt++) {
          ok = await open(command.port, command.localAddress, token, scope, command.deflate ?? false);
        }
        if (ok) subscribed++;
        else failed++;
      }
    }),
  );
  process.send?.({ type: 'connected', id: command.id, subscribed, failed } satisfies ClientsReport);
});
process.on('disconnect', () => process.exit(0));
