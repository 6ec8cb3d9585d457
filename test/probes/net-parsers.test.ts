/** The pure parts of the grpc and dns probes: protobuf by hand, DNS answer text, server and resolv.conf parsing. */
import { describe, expect, it } from 'vitest';
import { compileRegex, parseDnsServer } from '../../src/config/schema.js';
import { resolvConfNameserver } from '../../src/probes/dns.js';
import { answerMatches, answerText, reverseName } from '../../src/probes/dns-wire.js';
import { decodeHealthResponse, encodeHealthRequest, splitHostPort } from '../../src/probes/grpc.js';

describe('grpc health messages', () => {
  it.each([
    ['', '0000000000'],
    ['a', '00000000030a0161'],
    ['x'.repeat(200), `00000000cb0ac801${'78'.repeat(200)}`],
  ])('HealthCheckRequest{service: %j} is one length-prefixed field', (service, hex) => {
    expect(encodeHealthRequest(service).toString('hex')).toBe(hex);
  });

  it.each([
    ['000000000208 01', 1, 'SERVING'],
    ['000000000208 02', 2, 'NOT_SERVING'],
    ['0000000000', 0, 'an empty message is UNKNOWN (proto3 zero value)'],
    ['000000000612 02 6869 0801', 1, 'unknown fields before it are skipped'],
  ])('%s → %i (%s)', (hex, status) => {
    expect(decodeHealthResponse(Buffer.from(hex.replace(/ /g, ''), 'hex'))).toBe(status);
  });

  it.each([
    ['00000000', /needs 5 header bytes/],
    ['0100000002 0801', /compressed/],
    ['0000000005 0801', /cut short/],
    ['0000000001 08', /truncated varint/],
  ])('%s is refused: %s', (hex, message) => {
    expect(() => decodeHealthResponse(Buffer.from(hex.replace(/ /g, ''), 'hex'))).toThrow(message);
  });

  it.each([
    ['localhost:50051', 'localhost', 50051],
    ['[::1]:50051', '::1', 50051],
    ['10.0.0.5:443', '10.0.0.5', 443],
  ])('%s splits into host and port', (text, host, port) => expect(splitHostPort(text)).toEqual({ host, port }));
});

describe('dns', () => {
  it.each([
    ['localhost', { host: 'localhost', port: 53 }],
    ['localhost:5353', { host: 'localhost', port: 5353 }],
    ['10.0.0.2', { host: '10.0.0.2', port: 53 }],
    ['10.0.0.2:5300', { host: '10.0.0.2', port: 5300 }],
    ['fd00::53', { host: 'fd00::53', port: 53 }],
    ['[fd00::53]:5353', { host: 'fd00::53', port: 5353 }],
    ['{{address}}', { host: '{{address}}', port: 53 }],
    ['dns.example.com', undefined],
    ['10.0.0.2:99999', undefined],
    ['', undefined],
  ])('server %j → %j', (text, want) => expect(parseDnsServer(text)).toEqual(want));

  it.each([
    ['nameserver 127.0.0.53\noptions edns0\n', '127.0.0.53'],
    ['# comment\nsearch lan\nnameserver fe80::1%eth0\nnameserver 10.0.0.1\n', 'fe80::1'],
    ['nameserver not-an-ip\nnameserver 10.0.0.1\n', '10.0.0.1'],
    ['search lan\n', undefined],
  ])('resolv.conf %j → %j', (text, ns) => expect(resolvConfNameserver(text)).toBe(ns));

  it.each([
    ['10.1.2.3', '3.2.1.10.in-addr.arpa'],
    ['2001:db8::1', `1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.ip6.arpa`],
    ['www.example.com', 'www.example.com'],
  ])('reverse name of %s', (query, name) => expect(reverseName(query)).toBe(name));

  it.each([
    [{ type: 'A', name: 'x', data: '10.0.0.1' }, '10.0.0.1'],
    [{ type: 'AAAA', name: 'x', data: 'FD00:0:0::1' }, 'fd00::1'],
    [{ type: 'CNAME', name: 'x', data: 'WWW.Example.com.' }, 'www.example.com'],
    [{ type: 'MX', name: 'x', data: { preference: 10, exchange: 'mail.example.com' } }, '10 mail.example.com'],
    [{ type: 'SRV', name: 'x', data: { priority: 0, weight: 5, port: 5060, target: 'sip.example.com' } }, '0 5 5060 sip.example.com'],
    [{ type: 'TXT', name: 'x', data: [Buffer.from('v=spf1 '), Buffer.from('-all')] }, 'v=spf1 -all'],
  ] as const)('%j as text is %j', (answer, text) => expect(answerText(answer as never)).toBe(text));

  it.each([
    ['A', '10.0.0.1', '10.0.0.1', true],
    ['A', '10.0.0.1', '10.0.0.2', false],
    ['AAAA', 'fd00::1', 'FD00:0000::1', true],
    ['CNAME', 'www.example.com', 'WWW.example.com.', true],
    ['MX', '10 mail.example.com', 'mail.example.com', true],
    ['MX', '10 mail.example.com', '10  mail.example.com', true],
    ['MX', '10 mail.example.com', '20 mail.example.com', false],
    ['SRV', '0 5 5060 sip.example.com', 'sip.example.com:5060', true],
    ['SRV', '0 5 5060 sip.example.com', 'sip.example.com:5061', false],
    ['TXT', 'v=spf1 -all', 'v=spf1 -all', true],
    ['TXT', 'v=spf1 -all', 'V=SPF1 -ALL', false],
  ] as const)('%s answer %j matches %j: %s', (type, text, expected, ok) => expect(answerMatches(type, text, expected)).toBe(ok));
});

describe('expected_body_regex', () => {
  it.each([
    ['ok', 'all ok', true],
    ['^ok$', 'all ok', false],
    ['/OK/i', 'all ok', true],
    ['/a.b/s', 'a\nb', true],
    ['/a/b/', 'x/a/b/y', true],
  ])('%s on %j → %s', (re, text, ok) => expect(compileRegex(re).test(text)).toBe(ok));
});
