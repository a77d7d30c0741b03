import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NdjsonUpload } from './ndjson-upload';

/**
 * A peer speaking the streaming upload's answer (docs/api.md "Streaming upload") by a script, so
 * the upload's reading of every kind of answer line is checked; the real worker is driven in
 * driver.stack.test.ts.
 */
async function peer(
  answer: (line: { field: string; offset: number; text: string }, res: http.ServerResponse) => void,
  onEnd: (res: http.ServerResponse, length: number) => void = (res, length) =>
    res.end(`${JSON.stringify({ done: true, length })}\n`),
) {
  const seen: { url: string; headers: http.IncomingHttpHeaders; lines: string[] } = {
    url: '',
    headers: {},
    lines: [],
  };
  const server = http.createServer((req, res) => {
    seen.url = req.url ?? '';
    seen.headers = req.headers;
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let buffered = '';
    let length = 0;
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const raw = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        seen.lines.push(raw);
        const line = JSON.parse(raw);
        length = line.offset + line.text.length;
        answer(line, res);
      }
    });
    req.on('end', () => onEnd(res, length));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const servers: http.Server[] = [];
const agents: http.Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) a.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function upload(baseUrl: string) {
  const acks: number[] = [];
  const failures: string[] = [];
  const agent = new http.Agent();
  agents.push(agent);
  const u = new NdjsonUpload({
    baseUrl,
    token: 'tok',
    path: 'messages',
    id: 'm-1',
    field: 'content',
    agent,
    hooks: { acked: (length) => acks.push(length), failed: (message) => failures.push(message) },
  });
  return { u, acks, failures };
}

const ack = (res: http.ServerResponse, offset: number, length: number) =>
  res.write(`${JSON.stringify({ offset, length, syncId: length })}\n`);

describe('NdjsonUpload', () => {
  it('sends each piece as one contract append line at its offset and reports the acks', async () => {
    const { baseUrl, seen } = await peer((line, res) =>
      ack(res, line.offset, line.offset + line.text.length),
    );
    const { u, acks, failures } = upload(baseUrl);
    u.send(' 00000001');
    u.send('é"\\ ok');
    u.send('');
    expect(u.offset).toBe(15);
    await u.end();
    expect(failures).toEqual([]);
    expect(acks).toEqual([9, 15]);
    expect(seen.url).toBe('/api/messages/m-1/append-stream');
    expect(seen.headers).toMatchObject({
      authorization: 'Bearer tok',
      'content-type': 'application/x-ndjson',
    });
    expect(seen.lines.map((l) => JSON.parse(l))).toEqual([
      { field: 'content', offset: 0, text: ' 00000001' },
      { field: 'content', offset: 9, text: 'é"\\ ok' },
    ]);
  });

  it('reports an error line as a failure', async () => {
    const { baseUrl } = await peer((_line, res) =>
      res.end(
        `${JSON.stringify({ error: { code: 'offset_mismatch', message: 'no', details: { length: 3 } } })}\n`,
      ),
    );
    const { u, failures } = upload(baseUrl);
    u.send('abc');
    await u.finished;
    expect(failures).toEqual(['offset_mismatch: no']);
  });

  it('refuses an ack for more than was sent, and an answer that ends early', async () => {
    const { baseUrl } = await peer((_line, res) => ack(res, 0, 99));
    const first = upload(baseUrl);
    first.u.send('abc');
    await first.u.finished;
    expect(first.failures).toEqual(['acknowledged 99, only 3 sent']);

    const early = await peer((line, res) =>
      res.end(`${JSON.stringify({ done: true, length: line.text.length })}\n`),
    );
    const second = upload(early.baseUrl);
    second.u.send('abc');
    await second.u.finished;
    expect(second.failures).toEqual(['the server ended the stream early']);
  });

  it('fails when done comes before every piece was acknowledged', async () => {
    const { baseUrl } = await peer(
      () => {},
      (res) => res.end(`${JSON.stringify({ done: true, length: 3 })}\n`),
    );
    const { u, acks, failures } = upload(baseUrl);
    u.send('abc');
    u.send('def');
    await u.end();
    expect(acks).toEqual([3]);
    expect(failures).toEqual(['done at 3, sent 6']);
  });

  it('reports a refused request with its status', async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"unauthorized","message":"bad token"}}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    const { u, failures } = upload(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    u.send('abc');
    await u.end();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/^append-stream answered 401: .*unauthorized/);
  });
});
