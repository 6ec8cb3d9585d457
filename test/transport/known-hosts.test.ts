import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  knownHostName,
  parseKnownHosts,
  patternsMatch,
  recordedKeyTypes,
  type HostKeyVerdict,
} from '../../src/transport/known-hosts.js';
import { hostKeyAlgorithms } from '../../src/transport/host-key-policy.js';

/** An SSH public key blob: string type, then some bytes standing in for the key. */
function blob(type: string, seed: string): Buffer {
  const t = Buffer.from(type);
  const body = Buffer.from(seed);
  const len = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([len(t.length), t, len(body.length), body]);
}
const ED_A = blob('ssh-ed25519', 'key-a');
const ED_B = blob('ssh-ed25519', 'key-b');
const RSA = blob('ssh-rsa', 'rsa-key');
const b64 = (b: Buffer): string => b.toString('base64');

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('knownHostName', () => {
  it.each([
    ['10.0.0.5', 22, '10.0.0.5'],
    ['10.0.0.5', 2222, '[10.0.0.5]:2222'],
    ['::1', 2222, '[::1]:2222'],
  ])('%s port %i is looked up as %s', (host, port, name) => {
    expect(knownHostName(host, port)).toBe(name);
  });
});

describe('patternsMatch', () => {
  it.each([
    // [patterns, name, expected, why]
    ['10.0.0.5', '10.0.0.5', true, 'plain name'],
    ['web,10.0.0.5', '10.0.0.5', true, 'comma-separated list'],
    ['WEB-1', 'web-1', true, 'names compare case-insensitively'],
    ['[10.0.0.5]:2222', '[10.0.0.5]:2222', true, 'non-22 port form'],
    ['10.0.0.5', '[10.0.0.5]:2222', false, 'a port-22 line does not cover another port'],
    ['10.0.0.*', '10.0.0.77', true, '* wildcard'],
    ['10.0.0.?', '10.0.0.77', false, '? is exactly one character'],
    ['10.0.0.*,!10.0.0.7', '10.0.0.7', false, 'negation wins'],
    ['10.0.0.5.', '10.0.0.5', false, 'dots are literal'],
    [hashed('[127.0.0.1]:2222'), '[127.0.0.1]:2222', true, 'hashed entry (HMAC-SHA1)'],
    [hashed('[127.0.0.1]:2222'), '[127.0.0.1]:2223', false, 'hashed entry for another port'],
  ])('%s vs %s → %s (%s)', (patterns, name, expected) => {
    expect(patternsMatch(patterns, name)).toBe(expected);
  });
});

describe('checkHostKey', () => {
  const file = [
    '# a comment',
    '',
    `@cert-authority *.example ${'ssh-ed25519'} ${b64(ED_B)}`,
    `[10.0.0.5]:2222 ssh-ed25519 ${b64(ED_A)} web-1`,
    `10.0.0.6 ssh-ed25519 ${b64(ED_A)}`,
    `10.0.0.6 ssh-ed25519 ${b64(ED_B)}`,
    `10.0.0.7 ssh-rsa ${b64(RSA)}`,
    `@revoked * ssh-ed25519 ${b64(blob('ssh-ed25519', 'stolen'))}`,
    'garbage line',
    `10.0.0.8 ssh-rsa ${b64(ED_A)}`, // type field disagrees with the blob: skipped
  ].join('\n');
  const entries = parseKnownHosts(file);

  it('skips comments, blank, @cert-authority and malformed lines', () => {
    expect(entries.map((e) => e.line)).toEqual([4, 5, 6, 7, 8]);
  });

  it.each<[string, number, Buffer, HostKeyVerdict, string]>([
    ['10.0.0.5', 2222, ED_A, { kind: 'match', line: 4 }, 'the recorded key'],
    ['10.0.0.5', 2222, ED_B, { kind: 'changed', line: 4, keyType: 'ssh-ed25519' }, 'same type, other key'],
    ['10.0.0.6', 22, ED_B, { kind: 'match', line: 6 }, 'a later line of the same host matches'],
    ['10.0.0.9', 22, ED_A, { kind: 'unknown', otherTypes: [] }, 'host not recorded'],
    ['10.0.0.7', 22, ED_A, { kind: 'unknown', otherTypes: [{ line: 7, keyType: 'ssh-rsa' }] }, 'only another key type recorded'],
    ['10.0.0.5', 2222, blob('ssh-ed25519', 'stolen'), { kind: 'revoked', line: 8 }, '@revoked refuses for every host'],
  ])('%s:%i → %o (%s)', (host, port, key, verdict) => {
    expect(checkHostKey(entries, host, port, key)).toEqual(verdict);
  });

  it('lists the recorded key types so they can be negotiated first', () => {
    expect(recordedKeyTypes(entries, '10.0.0.7', 22)).toEqual(['ssh-rsa']);
    expect(hostKeyAlgorithms(['ssh-rsa']).slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-ed25519']);
    expect(hostKeyAlgorithms([])[0]).toBe('ssh-ed25519');
  });

  describe('in a file long enough to be looked up by name', () => {
    const padded = parseKnownHosts(
      [
        file,
        ...Array.from({ length: 40 }, (_, i) => `10.1.0.${i} ssh-ed25519 ${b64(ED_B)}`),
        `WEB-9,10.0.0.9 ssh-ed25519 ${b64(ED_B)}`,
        `10.0.0.*,!10.0.0.6 ssh-rsa ${b64(RSA)}`,
        `${hashed('10.0.0.10')} ssh-ed25519 ${b64(ED_A)}`,
      ].join('\n'),
    );
    it.each<[string, number, Buffer, HostKeyVerdict, string]>([
      ['10.0.0.5', 2222, ED_A, { kind: 'match', line: 4 }, 'the recorded key'],
      ['10.0.0.5', 2222, ED_B, { kind: 'changed', line: 4, keyType: 'ssh-ed25519' }, 'same type, other key'],
      ['10.0.0.6', 22, ED_B, { kind: 'match', line: 6 }, 'a later line of the same host matches; the negation leaves it out'],
      ['10.0.0.7', 22, ED_A, { kind: 'unknown', otherTypes: [{ line: 7, keyType: 'ssh-rsa' }, { line: 52, keyType: 'ssh-rsa' }] }, 'plain and wildcard lines, in file order'],
      ['web-9', 22, ED_B, { kind: 'match', line: 51 }, 'one name of several, case-insensitively'],
      ['10.0.0.9', 22, ED_A, { kind: 'changed', line: 51, keyType: 'ssh-ed25519' }, 'the other name of that line'],
      ['10.0.0.10', 22, ED_A, { kind: 'match', line: 53 }, 'a hashed line'],
      ['10.1.0.39', 22, ED_B, { kind: 'match', line: 50 }, 'a plain line far down'],
      ['10.1.0.39', 22, blob('ssh-ed25519', 'stolen'), { kind: 'revoked', line: 8 }, '@revoked still refuses for every host'],
    ])('%s:%i → %o (%s)', (host, port, key, verdict) => {
      expect(checkHostKey(padded, host, port, key)).toEqual(verdict);
    });
    it('lists the recorded key types of plain and wildcard lines', () => {
      expect(recordedKeyTypes(padded, '10.0.0.7', 22)).toEqual(['ssh-rsa']);
      expect(recordedKeyTypes(padded, '10.0.0.5', 22)).toEqual(['ssh-rsa']);
      expect(recordedKeyTypes(padded, '10.0.0.6', 22)).toEqual(['ssh-ed25519']);
    });
  });

  it('prints fingerprints as ssh-keygen does', () => {
    expect(fingerprint(ED_A)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe('appendKnownHost', () => {
  it('creates the directory and a 0600 file, and starts a fresh line when the file lacks a final newline', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'clonebox-kh-'));
    const file = path.join(dir, 'sub', 'known_hosts');
    await appendKnownHost(file, '127.0.0.1', 2222, ED_A);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await writeFile(file, `${await readFile(file, 'utf8')}# no newline at end`);
    await appendKnownHost(file, '127.0.0.1', 22, ED_B);
    const text = await readFile(file, 'utf8');
    expect(text).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${b64(ED_A)}\n# no newline at end\n127.0.0.1 ssh-ed25519 ${b64(ED_B)}\n`);
    expect(checkHostKey(parseKnownHosts(text), '127.0.0.1', 22, ED_B)).toEqual({ kind: 'match', line: 3 });
  });
});
