/**
 * The grpc and dns probes, https certificate checks and response time against real servers in a lab
 * guest (test/lab/extra-services.ts): a gRPC server with the standard health service, dnsmasq with
 * records we control, nginx serving certificates made with openssl. One set of services per file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureLab, isRoot, type Lab } from '../lab/lab.js';
import { DNS, ensureExtraServices, EXTRA_VM, PORTS, setGrpcServing, type ExtraServices } from '../lab/extra-services.js';
import { checkOf, runLab, type CheckSpec } from '../support/fleet-run.js';

const lab = isRoot() ? await ensureLab() : undefined;
const suite = lab ? describe : describe.skip;
if (!lab) console.warn('clonebox: network probe tests skipped: the lab needs root (network namespaces)');

suite('grpc, dns and https against real servers in a guest', () => {
  const L = lab as Lab;
  let x: ExtraServices;
  beforeAll(async () => {
    x = await ensureExtraServices(L);
  }, 120_000);

  /** Run checks on the extra services' VM; each case is its own check, all in one round. */
  async function run(cases: ReadonlyArray<readonly [string, Record<string, unknown>, ...unknown[]]>) {
    const checks = cases.map(([, spec], i) => ({ name: `c${i}`, ...spec }) as CheckSpec);
    const report = await runLab(L, [EXTRA_VM], checks);
    return cases.map((_, i) => checkOf(report, EXTRA_VM, `c${i}`));
  }

  describe('grpc: grpc.health.v1.Health/Check', () => {
    const cases = [
      ['the server as a whole, through the tunnel', { type: 'grpc', address: `localhost:${PORTS.grpc}` }, 'HEALTHY', /^SERVING: the server at localhost:50051$/, 'ssh-tunnel'],
      ['a service that is up', { type: 'grpc', address: `localhost:${PORTS.grpc}`, service: 'lab.Up' }, 'HEALTHY', /^SERVING: service "lab.Up"/, 'ssh-tunnel'],
      ['a service that is down', { type: 'grpc', address: `localhost:${PORTS.grpc}`, service: 'lab.Down' }, 'UNHEALTHY', /^NOT_SERVING: service "lab.Down"/, 'ssh-tunnel'],
      ['a service the server does not know', { type: 'grpc', address: `localhost:${PORTS.grpc}`, service: 'lab.Nope' }, 'UNHEALTHY', /^SERVICE_UNKNOWN: .*"lab.Nope"/, 'ssh-tunnel'],
      ['nothing listens', { type: 'grpc', address: 'localhost:50059' }, 'UNHEALTHY', /refused: nothing listens there/, 'ssh-tunnel'],
      ['an HTTP/1.1 server is no gRPC server', { type: 'grpc', address: 'localhost:8080' }, 'UNHEALTHY', /does not speak gRPC/, 'ssh-tunnel'],
      ['bound to the guest loopback: not reachable from the host', { type: 'grpc', address: `{{address}}:${PORTS.grpc}` }, 'UNHEALTHY', /refused/, 'host'],
      ['TLS with the lab CA', { type: 'grpc', address: `localhost:${PORTS.grpcTls}`, tls: { ca_file: '@CA' } }, 'HEALTHY', /^SERVING/, 'ssh-tunnel'],
      ['TLS without trusting the lab CA', { type: 'grpc', address: `localhost:${PORTS.grpcTls}`, tls: true }, 'UNHEALTHY', /not trusted|untrusted/, 'ssh-tunnel'],
      ['TLS insecure', { type: 'grpc', address: `localhost:${PORTS.grpcTls}`, tls: { insecure: true } }, 'HEALTHY', /^SERVING/, 'ssh-tunnel'],
      ['TLS with server_name the certificate has', { type: 'grpc', address: `localhost:${PORTS.grpcTls}`, tls: { ca_file: '@CA', server_name: 'tls.lab.test' } }, 'HEALTHY', /^SERVING/, 'ssh-tunnel'],
      ['TLS with a server_name it has not', { type: 'grpc', address: `localhost:${PORTS.grpcTls}`, tls: { ca_file: '@CA', server_name: 'other.lab.test' } }, 'UNHEALTHY', /certificate is for .*not other.lab.test/, 'ssh-tunnel'],
    ] as const;
    it('each case gives its status, with the reason', async () => {
      const results = await run(cases.map(([why, spec, ...rest]) => [why, withCa(spec), ...rest] as const));
      const got = results.map((r, i) => [cases[i]![0], r.status, r.message, r.transport]);
      const want = cases.map(([why, , status, message, transport]) => [why, status, expect.stringMatching(message), transport]);
      expect(got).toEqual(want);
      expect(results[0]!.details).toMatchObject({ serving_status: 'SERVING', grpc_status: 'OK' });
      expect(results[7]!.details.certificate).toMatchObject({ issuer: 'CN=clonebox lab CA', subject: 'CN=localhost' });
    });

    describe('switched to NOT_SERVING', () => {
      afterAll(() => setGrpcServing(x, true));
      it('goes UNHEALTHY with the status name, and back to HEALTHY when SERVING again', async () => {
        const check = [['whole server', { type: 'grpc', address: `localhost:${PORTS.grpc}` }]] as const;
        await setGrpcServing(x, false);
        const down = await until(async () => (await run(check))[0]!, (r) => r.status === 'UNHEALTHY');
        expect(down.message).toMatch(/^NOT_SERVING: the server/);
        await setGrpcServing(x, true);
        const up = await until(async () => (await run(check))[0]!, (r) => r.status === 'HEALTHY');
        expect(up.message).toMatch(/^SERVING/);
      });
    });
  });

  describe('dns', () => {
    const cases = [
      ["the guest's own resolver (its /etc/resolv.conf), asked from inside the guest", { type: 'dns', query: DNS.a.name, expected_answers: [DNS.a.ip] }, 'HEALTHY', /is 10\.1\.2\.3 \(from the guest's resolver 127\.0\.0\.53:53\)/, 'ssh-tunnel'],
      ['server: localhost is the guest loopback', { type: 'dns', query: DNS.a.name, server: 'localhost' }, 'HEALTHY', /in the guest/, 'ssh-tunnel'],
      ['an IP server from the host over UDP', { type: 'dns', query: DNS.a.name, server: '{{address}}', expected_answers: [DNS.a.ip] }, 'HEALTHY', /10\.1\.2\.3/, 'host'],
      ['the same over TCP', { type: 'dns', query: DNS.a.name, server: '{{address}}', protocol: 'tcp' }, 'HEALTHY', /10\.1\.2\.3/, 'host'],
      ['AAAA', { type: 'dns', query: DNS.aaaa.name, record_type: 'aaaa', server: '{{address}}', expected_answers: ['FD00:0::1'] }, 'HEALTHY', /fd00::1/, 'host'],
      ['CNAME', { type: 'dns', query: DNS.cname.name, record_type: 'CNAME', server: '{{address}}', expected_answers: [`${DNS.cname.target}.`] }, 'HEALTHY', /www\.lab\.test/, 'host'],
      ['MX by exchange alone', { type: 'dns', query: DNS.mx.name, record_type: 'MX', server: '{{address}}', expected_answers: [DNS.mx.exchange] }, 'HEALTHY', /10 mail\.lab\.test/, 'host'],
      ['MX with its preference', { type: 'dns', query: DNS.mx.name, record_type: 'MX', server: '{{address}}', expected_answers: ['10 mail.lab.test'] }, 'HEALTHY', /mail/, 'host'],
      ['SRV as target:port', { type: 'dns', query: DNS.srv.name, record_type: 'SRV', server: '{{address}}', expected_answers: ['sip.lab.test:5060'] }, 'HEALTHY', /0 5 5060 sip\.lab\.test/, 'host'],
      ['TXT', { type: 'dns', query: DNS.txt.name, record_type: 'TXT', server: '{{address}}', expected_answers: [DNS.txt.text] }, 'HEALTHY', /v=spf1 -all/, 'host'],
      ['PTR of an IP', { type: 'dns', query: DNS.ptr.ip, record_type: 'PTR', server: '{{address}}', expected_answers: [DNS.ptr.name] }, 'HEALTHY', /3\.2\.1\.10\.in-addr\.arpa PTR is www\.lab\.test/, 'host'],
      ['a missing name is NXDOMAIN', { type: 'dns', query: DNS.missing, server: '{{address}}' }, 'UNHEALTHY', /^NXDOMAIN for nope\.lab\.test A .*expected NOERROR/, 'host'],
      ['NXDOMAIN when that is what is expected', { type: 'dns', query: DNS.missing, expected_rcode: 'nxdomain' }, 'HEALTHY', /NXDOMAIN .*as expected/, 'ssh-tunnel'],
      ['a wrong answer', { type: 'dns', query: DNS.a.name, server: '{{address}}', expected_answers: ['10.9.9.9'] }, 'UNHEALTHY', /is 10\.1\.2\.3 at .*missing 10\.9\.9\.9/, 'host'],
      ['a name with no record of that type', { type: 'dns', query: DNS.cname.target, record_type: 'MX', server: '{{address}}' }, 'UNHEALTHY', /no MX record/, 'host'],
      ['a dead server (nothing on port 53) from the host', { type: 'dns', query: DNS.a.name, server: L?.vms['web-1']?.address ?? '' }, 'UNHEALTHY', /no DNS server answers .*refused/, 'host'],
      ['a dead server in the guest', { type: 'dns', query: DNS.a.name, server: 'localhost:5353' }, 'UNHEALTHY', /refused/, 'ssh-tunnel'],
    ] as const;
    it('each case gives its status, with the reason', async () => {
      const results = await run(cases);
      const got = results.map((r, i) => [cases[i]![0], r.status, r.message, r.transport]);
      const want = cases.map(([why, , status, message, transport]) => [why, status, expect.stringMatching(message), transport]);
      expect(got).toEqual(want);
      expect(results[0]!.details).toMatchObject({ server: '127.0.0.53:53', protocol: 'tcp', rcode: 'NOERROR', answers: ['10.1.2.3'] });
      expect(results[2]!.details).toMatchObject({ protocol: 'udp', authoritative: true });
    });
  });

  describe('https certificates and response time', () => {
    const https = (cert: keyof typeof PORTS.https, extra: Record<string, unknown> = {}) => ({
      type: 'http',
      url: `https://localhost:${PORTS.https[cert]}/`,
      ca_file: '@CA',
      ...extra,
    });
    const cases = [
      ['a valid certificate', https('valid'), 'HEALTHY', /^HTTP 200$/],
      ['10 days left: below the 14d warning', https('days10'), 'DEGRADED', /^HTTP 200; the certificate expires in 9 days \(warning below 14d\)$/],
      ['10 days left with a 7d warning', https('days10', { cert_expiry_warning: '7d' }), 'HEALTHY', /^HTTP 200$/],
      ['1 day left: below the 3d critical', https('days1'), 'UNHEALTHY', /the certificate expires in \d+ hours \(critical below 3d\)/],
      ['expired', https('expired'), 'UNHEALTHY', /the certificate expired on \d{4}-\d\d-\d\d/],
      ['expired, even when insecure', https('expired', { insecure: true }), 'UNHEALTHY', /expired on/],
      ['for another host', https('wrongHost'), 'UNHEALTHY', /the certificate is for other\.example, not localhost/],
      ['for another host, insecure', https('wrongHost', { insecure: true }), 'HEALTHY', /^HTTP 200$/],
      ['self-signed', https('selfSigned'), 'UNHEALTHY', /self-signed/],
      ['self-signed, insecure', https('selfSigned', { insecure: true }), 'HEALTHY', /^HTTP 200$/],
      ['an untrusted CA (no ca_file)', { type: 'http', url: `https://localhost:${PORTS.https.valid}/` }, 'UNHEALTHY', /not trusted \(trust it with ca_file\)/],
      ['server_name the certificate has', https('valid', { server_name: 'tls.lab.test' }), 'HEALTHY', /^HTTP 200$/],
      ['from the host by IP: the certificate has the IP', { ...https('valid'), url: `https://{{address}}:${PORTS.https.valid}/` }, 'HEALTHY', /^HTTP 200$/],
      ['a missing ca_file cannot be evaluated', https('valid', { ca_file: '/nonexistent/ca.pem' }), 'UNKNOWN', /cannot read ca_file \/nonexistent\/ca\.pem: ENOENT/],
      ['body regex', https('valid', { expected_body_regex: '/TLS OK \\w+/i' }), 'HEALTHY', /body as expected/],
      ['body regex that does not match', https('valid', { expected_body_regex: '^nope' }), 'UNHEALTHY', /does not match \^nope/],
      ['slower than max_response_time', { type: 'http', url: `http://localhost:${PORTS.slowHttp}/slow?ms=700`, max_response_time: '200ms' }, 'DEGRADED', /^HTTP 200; slow: answered in \d+(ms|\.\ds|s), over max_response_time 200ms$/],
      ['within max_response_time', { type: 'http', url: `http://localhost:${PORTS.slowHttp}/fast`, max_response_time: '20s' }, 'HEALTHY', /^HTTP 200$/],
    ] as const;
    it('each case gives its status, with the reason', async () => {
      const results = await run(cases.map(([why, spec, ...rest]) => [why, withCa(spec), ...rest] as const));
      const got = results.map((r, i) => [cases[i]![0], r.status, r.message]);
      const want = cases.map(([why, , status, message]) => [why, status, expect.stringMatching(message)]);
      expect(got).toEqual(want);
      expect(results[1]!.details.certificate).toMatchObject({ subject: 'CN=localhost', issuer: 'CN=clonebox lab CA', days_left: 9 });
      expect(Date.parse((results[1]!.details.certificate as { not_after: string }).not_after)).toBeGreaterThan(Date.now());
      expect((results[16]!.details.response_ms as number) >= 700).toBe(true);
    });
  });

  function withCa(spec: Record<string, unknown>): Record<string, unknown> {
    return JSON.parse(JSON.stringify(spec).replaceAll('"@CA"', JSON.stringify(x.caFile))) as Record<string, unknown>;
  }
});

/** Poll `fn` until `ok`, at most 20 tries / 30 s (the signal is delivered asynchronously). */
async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 30_000;
  let last = await fn();
  for (let i = 0; i < 20 && !ok(last) && Date.now() < deadline; i++) {
    await new Promise((r) => setTimeout(r, 200));
    last = await fn();
  }
  return last;
}
