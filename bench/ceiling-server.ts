/**
 * The ceiling: a bare node:http server, in a process of its own like ours, that answers
 * every request with the bytes ours answered for the scenario (status, headers, body), so
 * the difference between the two is what our server does beyond writing those bytes.
 * Started by bench/ceiling.ts, which sends the canned answer over IPC.
 *
 * For the SSE scenario it also keeps every GET open as an event stream and, on each write,
 * sends all streams the event frame ours sent, with the write's sequence number in it.
 */
import { createServer, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { CannedAnswer } from './ceiling.js';

// Headers node:http writes itself; copying them would duplicate or contradict them.
const MANAGED = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

const unmanaged = (headers: OutgoingHttpHeaders) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !MANAGED.has(name)));

function start(canned: CannedAnswer): void {
  const headers = unmanaged(canned.headers);
  const sseHeaders = canned.sse && unmanaged(canned.sse.headers);
  const body = Buffer.from(canned.body, 'base64');
  const streams = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    if (canned.sse && req.method === 'GET') {
      res.writeHead(200, sseHeaders);
      res.flushHeaders();
      streams.add(res);
      res.on('close', () => streams.delete(res));
      return;
    }
    // Read the whole request as any real server must before it answers.
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      res.writeHead(canned.status, { ...headers, 'content-length': body.length });
      res.end(body);
      if (!canned.sse) return;
      const seq = /"benchSeq":(\d+)/.exec(Buffer.concat(chunks).toString())?.[1] ?? '0';
      const frame = canned.sse.frame.replace(/"benchSeq":\d+/, `"benchSeq":${seq}`);
      for (const stream of streams) stream.write(frame);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
  });
}

process.once('message', (canned: CannedAnswer) => start(canned));
// The parent going away (a crash, Ctrl-C) must not leave this process serving forever.
process.on('disconnect', () => process.exit(0));
