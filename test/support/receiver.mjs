#!/usr/bin/env node
/**
 * A real receiver process for the alerting tests: an HTTP server (webhook, Slack format) or an SMTP server
 * (smtp-server, with STARTTLS on its built-in test certificate and AUTH PLAIN/LOGIN), on 127.0.0.1.
 * Every request or message received is appended as one JSON line to --log, so a test reads what arrived even
 * across restarts of the receiver. Prints "listening PORT" when ready.
 *
 *   node test/support/receiver.mjs http --port 0 --log /tmp/r.jsonl [--delay-ms 0] [--status 200]
 *   node test/support/receiver.mjs smtp --port 0 --log /tmp/m.jsonl --user alerts --pass s3cret
 */
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', default: '0' },
    log: { type: 'string' },
    'delay-ms': { type: 'string', default: '0' },
    status: { type: 'string', default: '200' },
    user: { type: 'string' },
    pass: { type: 'string' },
  },
});
const kind = positionals[0];
const log = values.log;
if (!log || (kind !== 'http' && kind !== 'smtp')) {
  console.error('usage: receiver.mjs http|smtp --log FILE [--port N]');
  process.exit(2);
}
const record = (entry) => appendFileSync(log, `${JSON.stringify({ ts: Date.now(), kind, ...entry })}\n`);
const port = Number(values.port);
const delay = Number(values['delay-ms']);
const status = Number(values.status);

if (kind === 'http') {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body = text;
      try {
        body = JSON.parse(text);
      } catch {
        // keep the text
      }
      setTimeout(() => {
        record({ method: req.method, path: req.url, headers: req.headers, body, status });
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status < 300 ? 'ok' : 'receiver says no');
      }, delay);
    });
  });
  server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
} else {
  const { SMTPServer } = await import('smtp-server');
  const { simpleParser } = await import('mailparser');
  const server = new SMTPServer({
    authOptional: !values.user,
    allowInsecureAuth: false,
    disabledCommands: values.user ? [] : ['AUTH'],
    logger: false,
    onAuth(auth, session, cb) {
      if (auth.username === values.user && auth.password === values.pass) return cb(null, { user: auth.username });
      return cb(new Error('535 authentication failed'));
    },
    onData(stream, session, cb) {
      simpleParser(stream)
        .then((mail) => {
          record({
            from: session.envelope.mailFrom && session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
            user: session.user ?? null,
            secure: Boolean(session.secure),
            subject: mail.subject,
            messageId: mail.messageId,
            headers: Object.fromEntries([...mail.headers].filter(([k]) => k.startsWith('x-')).map(([k, v]) => [k, String(v)])),
            text: mail.text,
          });
          cb();
        })
        .catch((err) => cb(err));
    },
  });
  server.on('error', (err) => console.error(`smtp: ${err.message}`));
  server.listen(port, '127.0.0.1', () => console.log(`listening ${server.server.address().port}`));
}
process.on('SIGTERM', () => process.exit(0));
