/**
 * Every provider against a real receiver on loopback: an HTTP receiver process (webhook, Slack format), an SMTP
 * server process (STARTTLS + AUTH), Debian's Alertmanager, and a command on this host. Plus `health alert test`
 * through the built CLI, which must say per provider whether it delivered, and never print a secret.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createProvider } from '../../src/alerting/providers/index.js';
import { DeliveryError, PAYLOAD_VERSION, type AlertNotification } from '../../src/alerting/types.js';
import { AlertProvider } from '../../src/config/schema.js';
import { REPO_ROOT } from '../lab/lab.js';
import { alertmanagerInstalled, startAlertmanager, startReceiver, until, type Alertmanager, type Receiver } from '../support/receivers.js';

const BIN = path.join(REPO_ROOT, 'bin', 'clonebox.js');
const exec = promisify(execFile);

function n(event: AlertNotification['event'], extra: Partial<AlertNotification> = {}): AlertNotification {
  const at = new Date().toISOString();
  return {
    version: PAYLOAD_VERSION, id: `id-${event}-${Math.random().toString(16).slice(2, 10)}`, event, status: event === 'resolved' ? 'resolved' : 'firing',
    alertname: 'CloneboxCheckFailing', alert_key: 'web-1/api-health', scope: 'check', vm: 'web-1', check: 'api-health', check_type: 'http',
    hypervisor: 'hv-1', tags: ['web'], severity: 'critical', state: event === 'resolved' ? 'HEALTHY' : 'UNHEALTHY', previous_state: 'HEALTHY',
    message: 'HTTP 503 from http://localhost:8080/health', since: at, at, repeat: 0, links: { details: 'http://status.example/vm/web-1' }, ...extra,
  };
}

/** A loopback port nothing listens on (taken and released). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const provider = (cfg: Record<string, unknown>) => createProvider(AlertProvider.parse(cfg), { repeatIntervalMs: 4 * 3_600_000 });
const send = (p: ReturnType<typeof provider>, x: AlertNotification) => p.send(x, AbortSignal.timeout(p.timeoutMs));

describe('providers against real receivers', () => {
  let http: Receiver;
  let slow: Receiver;
  let smtp: Receiver;
  beforeAll(async () => {
    [http, slow, smtp] = await Promise.all([startReceiver('http'), startReceiver('http', { delayMs: 3000 }), startReceiver('smtp', { user: 'alerts', pass: 'sm7p-s3cret' })]);
  });
  afterAll(async () => {
    await Promise.all([http?.close(), slow?.close(), smtp?.close()]);
  });

  it('webhook: POSTs the versioned payload as it is, with the id in a header and custom headers', async () => {
    const x = n('firing');
    await send(provider({ type: 'webhook', url: `${http.url}/hook?token=tok-s3cret`, headers: { 'X-Team': 'ops' } }), x);
    const got = http.received().find((r) => r.headers?.['x-clonebox-notification-id'] === x.id)!;
    expect(got.method).toBe('POST');
    expect(got.body).toEqual(x);
    expect(got.headers).toMatchObject({ 'x-team': 'ops', 'content-type': 'application/json' });
  });

  it('slack: the incoming-webhook format', async () => {
    const x = n('resolved');
    await send(provider({ type: 'slack', url: `${http.url}/services/T0/B0/XyZ`, channel: '#ops' }), x);
    const got = http.received().find((r) => r.path === '/services/T0/B0/XyZ')!;
    expect(got.body).toMatchObject({ text: expect.stringContaining('Resolved: web-1/api-health'), channel: '#ops', username: 'clonebox' });
    expect((got.body as { attachments: { color: string; text: string }[] }).attachments[0]).toMatchObject({ color: '#2eb886', text: x.message });
  });

  it('an HTTP refusal, a closed port and a hang each fail with a reason and no secret', async () => {
    const bad = await startReceiver('http', { status: 503 });
    try {
      const err = await send(provider({ type: 'webhook', url: `${bad.url}/hook?token=tok-s3cret` }), n('firing')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeliveryError);
      expect(String(err)).toMatch(/HTTP 503: receiver says no/);
      expect(String(err)).not.toContain('tok-s3cret');
    } finally {
      await bad.close();
    }
    const closed = await send(provider({ type: 'webhook', url: `http://127.0.0.1:${await closedPort()}/x` }), n('firing')).catch((e: unknown) => e);
    expect(String(closed)).toMatch(/ECONNREFUSED/);
    const t0 = Date.now();
    const hung = await send(provider({ type: 'webhook', url: slow.url, timeout: '500ms' }), n('firing')).catch((e: unknown) => e);
    expect(String(hung)).toMatch(/no answer .* in time/);
    expect(Date.now() - t0).toBeLessThan(2900);
  });

  it('email: STARTTLS required, AUTH, subject and a Message-ID from the notification id', async () => {
    const x = n('firing');
    const p = provider({
      type: 'email', host: '127.0.0.1', port: smtp.port, require_starttls: true, insecure: true,
      username: 'alerts', password: 'sm7p-s3cret', from: 'clonebox@example.test', to: ['ops@example.test', 'oncall@example.test'],
    });
    await send(p, x);
    const mail = await until('the mail', () => smtp.received().find((m) => m.messageId === `<${x.id}@clonebox>`));
    expect(mail).toMatchObject({
      from: 'clonebox@example.test', to: ['ops@example.test', 'oncall@example.test'], user: 'alerts', secure: true,
      subject: '[clonebox] UNHEALTHY: web-1/api-health',
      headers: { 'x-clonebox-notification-id': x.id, 'x-clonebox-event': 'firing' },
    });
    expect(mail.text).toContain(x.message);
    const wrong = provider({ type: 'email', host: '127.0.0.1', port: smtp.port, insecure: true, username: 'alerts', password: 'not-the-pw', from: 'a@b.c', to: 'x@y.z' });
    const err = await send(wrong, n('firing')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryError);
    expect(String(err)).toMatch(/535|auth/i);
  });

  it('command: the payload on stdin, fields in the environment; a non-zero exit is a failure with its stderr', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'clonebox-cmd-'));
    const out = path.join(dir, 'got.json');
    const x = n('flapping', { flap_percent: 61.2 });
    await send(provider({ type: 'command', command: `cat > ${out}; echo "$CLONEBOX_ALERT_EVENT $CLONEBOX_ALERT_VM" >> ${out}.env` }), x);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(x);
    expect(readFileSync(`${out}.env`, 'utf8')).toBe('flapping web-1\n');
    const err = await send(provider({ type: 'command', command: 'echo "pager down" >&2; exit 4' }), x).catch((e: unknown) => e);
    expect(String(err)).toMatch(/exited 4: pager down/);
    const t0 = Date.now();
    const hung = await send(provider({ type: 'command', command: 'sleep 30', timeout: '300ms' }), x).catch((e: unknown) => e);
    expect(String(hung)).toMatch(/did not finish in time/);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe.skipIf(!alertmanagerInstalled())('alertmanager provider against a real Alertmanager', () => {
  let am: Alertmanager;
  let hook: Receiver;
  beforeAll(async () => {
    hook = await startReceiver('http');
    am = await startAlertmanager(`${hook.url}/am`);
  }, 90_000);
  afterAll(async () => {
    await am?.close();
    await hook?.close();
  });

  it('lists the firing alert with its labels and annotations, and drops it once resolved; Alertmanager notifies both', async () => {
    const p = provider({ type: 'alertmanager', url: am.url });
    const firing = n('firing');
    await send(p, firing);
    const alerts = await until('the alert in Alertmanager', async () => {
      const list = await am.alerts();
      return list.some((a) => a.labels.vm === 'web-1') ? list : undefined;
    });
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.labels).toEqual({ alertname: 'CloneboxCheckFailing', vm: 'web-1', check: 'api-health', type: 'http', severity: 'critical', hypervisor: 'hv-1' });
    expect(alerts[0]!.annotations).toMatchObject({ message: firing.message, details_url: 'http://status.example/vm/web-1', notification_id: firing.id, state: 'UNHEALTHY' });
    expect(alerts[0]!.status.state).toBe('active');

    await send(p, n('resolved'));
    await until('the alert gone from Alertmanager', async () => (await am.alerts()).length === 0);
    // Alertmanager's own webhook saw it fire and resolve.
    const statuses = await until('Alertmanager to notify firing and resolved', () => {
      const s = hook.received().map((r) => (r.body as { status: string }).status);
      return s.includes('firing') && s.includes('resolved') ? s : undefined;
    }, 30_000);
    expect(statuses[0]).toBe('firing');
  });
});

describe('health alert test (CLI)', () => {
  let http: Receiver;
  let smtp: Receiver;
  beforeAll(async () => {
    [http, smtp] = await Promise.all([startReceiver('http'), startReceiver('smtp')]);
  });
  afterAll(async () => {
    await Promise.all([http?.close(), smtp?.close()]);
  });

  it('says per provider delivered or why not, exits 2 when one failed, and prints no secret', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'clonebox-alert-test-'));
    const config = path.join(dir, '.clonebox.yaml');
    writeFileSync(
      config,
      stringify({
        alerting: {
          providers: [
            { name: 'hook', type: 'webhook', url: `${http.url}/h`, headers: { Authorization: 'Bearer hdr-s3cret' } },
            // The test SMTP server's certificate is self-signed (and expired): without `insecure` STARTTLS fails.
            { name: 'mail', type: 'email', host: '127.0.0.1', port: smtp.port, insecure: true, from: 'c@example.test', to: 'ops@example.test' },
            { name: 'dead', type: 'webhook', url: `http://user:pw-s3cret@127.0.0.1:${await closedPort()}/x?api_key=key-s3cret` },
          ],
        },
      }),
    );
    const r = await exec('node', [BIN, 'health', 'alert', 'test', '--config', config]).catch((e: { code: number; stdout: string; stderr: string }) => e);
    const text = `${r.stdout}${r.stderr}`;
    expect((r as { code?: number }).code).toBe(2);
    expect(text).toMatch(/hook \(webhook\)\s+delivered in \d+ms/);
    expect(text).toMatch(/mail \(email\)\s+delivered in \d+ms/);
    expect(text).toMatch(/dead \(webhook\)\s+NOT delivered: cannot POST to .*ECONNREFUSED/);
    for (const secret of ['hdr-s3cret', 'pw-s3cret', 'key-s3cret']) expect(text).not.toContain(secret);
    expect(http.received().at(-1)!.body).toMatchObject({ event: 'test', version: 1 });
    expect(smtp.received()).toHaveLength(1);

    const only = await exec('node', [BIN, 'health', 'alert', 'test', '--config', config, '--provider', 'hook', '--json']);
    expect(JSON.parse(only.stdout).results).toEqual([{ provider: 'hook', type: 'webhook', delivered: true, duration_ms: expect.any(Number) }]);
    const typo = await exec('node', [BIN, 'health', 'alert', 'test', '--config', config, '--provider', 'hok']).catch((e: { code: number; stderr: string }) => e);
    expect((typo as { code?: number }).code).toBe(3);
    expect((typo as { stderr: string }).stderr).toMatch(/no provider named "hok".*did you mean "hook"/);
  }, 60_000);
});
