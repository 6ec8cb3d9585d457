/** The grpc, dns and new http keys: defaults, and one clear error per mistake, at its line. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';

const parse = (check: string) => parseConfig(`health_checks:\n  - ${check}\n`, 'c.yaml').health_checks[0];
const errorOf = (check: string) => {
  try {
    parse(check);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('new probe keys', () => {
  it('defaults', () => {
    expect(parse('{name: g, type: grpc, address: "localhost:50051"}')).toMatchObject({ service: '', tls: false, timeout: 5000 });
    expect(parse('{name: d, type: dns, query: example.com}')).toMatchObject({ record_type: 'A', protocol: 'udp', expected_rcode: 'NOERROR' });
    expect(parse('{name: d, type: dns, query: example.com, record_type: mx, expected_rcode: nxdomain}')).toMatchObject({ record_type: 'MX', expected_rcode: 'NXDOMAIN' });
    expect(parse('{name: h, type: http, url: "https://x/"}')).toMatchObject({ cert_expiry_warning: 14 * 86_400_000, cert_expiry_critical: 3 * 86_400_000, insecure: false });
    expect(parse('{name: h, type: http, url: "https://x/", max_response_time: 300ms}')).toMatchObject({ max_response_time: 300 });
  });

  it.each([
    ['{name: h, type: http, url: "http://x/", expected_body_regex: "(unclosed"}', /c\.yaml:2:\d+: health_checks\[0\]\.expected_body_regex: must be a valid regular expression: /],
    ['{name: h, type: http, url: "https://x/", cert_expiry_warning: 1d, cert_expiry_critical: 3d}', /health_checks\[0\]\.cert_expiry_warning: cert_expiry_warning must not be shorter than cert_expiry_critical/],
    ['{name: h, type: http, url: "http://x/", max_response_time: 0s}', /max_response_time: must be longer than 0/],
    ['{name: g, type: grpc, address: localhost}', /health_checks\[0\]\.address: must be host:port, e\.g\. localhost:50051/],
    ['{name: g, type: grpc, address: "x:1", tls: {verify: false}}', /health_checks\[0\]\.tls/],
    ['{name: d, type: dns, query: x, server: dns.example.com}', /health_checks\[0\]\.server: must be localhost \(the guest\), an IP address or \{\{address\}\}/],
    ['{name: d, type: dns, query: x, record_type: SOA}', /health_checks\[0\]\.record_type: /],
    ['{name: d, type: dns, query: x, expected_answers: []}', /health_checks\[0\]\.expected_answers/],
    ['{name: d, type: dns, query: x, expected_anwsers: [a]}', /health_checks\[0\]\.expected_anwsers: unknown key; did you mean "expected_answers"\?/],
    ['{name: d, type: dnss, query: x}', /unknown check type "dnss"; .*\(did you mean "dns"\?\)/],
  ])('%s', (check, message) => expect(errorOf(check)).toMatch(message));
});
