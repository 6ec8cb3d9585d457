#!/usr/bin/env node
/**
 * Services a lab guest runs for the grpc and http probe tests (started inside a VM's namespace by
 * test/lab/extra-services.ts, bound to the guest's loopback):
 *   --grpc HOST:PORT        a real gRPC server (@grpc/grpc-js) with the standard health service
 *                           (grpc-health-check): "" and "lab.Up" SERVING, "lab.Down" NOT_SERVING
 *   --grpc-tls HOST:PORT    the same over TLS, with --cert FILE --key FILE
 *   --http HOST:PORT        GET /slow?ms=N answers "slow ok" after N ms; GET /fast at once
 *   --ready FILE            written once every port listens
 * SIGUSR1 sets the server's overall status ("") to NOT_SERVING, SIGUSR2 back to SERVING.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';

const { values: opts } = parseArgs({
  options: {
    grpc: { type: 'string' },
    'grpc-tls': { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    http: { type: 'string' },
    ready: { type: 'string' },
  },
});

const health = new HealthImplementation({ '': 'SERVING', 'lab.Up': 'SERVING', 'lab.Down': 'NOT_SERVING' });
process.on('SIGUSR1', () => health.setStatus('', 'NOT_SERVING'));
process.on('SIGUSR2', () => health.setStatus('', 'SERVING'));
process.on('SIGTERM', () => process.exit(0));

function bind(server, address, creds) {
  return new Promise((resolve, reject) => server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))));
}

const servers = [];
if (opts.grpc) {
  const server = new grpc.Server();
  health.addToServer(server);
  await bind(server, opts.grpc, grpc.ServerCredentials.createInsecure());
  servers.push(server);
}
if (opts['grpc-tls']) {
  const server = new grpc.Server();
  health.addToServer(server);
  const creds = grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(opts.cert), private_key: readFileSync(opts.key) }], false);
  await bind(server, opts['grpc-tls'], creds);
  servers.push(server);
}
if (opts.http) {
  const [host, port] = [opts.http.slice(0, opts.http.lastIndexOf(':')), Number(opts.http.slice(opts.http.lastIndexOf(':') + 1))];
  const http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`${url.pathname.slice(1)} ok\n`);
    if (url.pathname === '/slow') setTimeout(send, Math.min(Number(url.searchParams.get('ms') ?? 1000), 30_000));
    else if (url.pathname === '/fast') send();
    else res.writeHead(404).end('not found\n');
  });
  await new Promise((resolve, reject) => http.listen(port, host, resolve).once('error', reject));
}
if (opts.ready) writeFileSync(opts.ready, `${process.pid}\n`);
