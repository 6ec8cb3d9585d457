/**
 * Which host key algorithms a dial asks for, and the decision on the key sshd presents: known_hosts (known-hosts.ts)
 * and the VM's policy (strict, accept-new). A changed or revoked key is always refused.
 */
import { expandHome } from '../util/home.js';
import type { SshTarget } from './connect.js';
import { appendKnownHost, blobKeyType, checkHostKey, fingerprint, knownHostName, type KnownHostEntry } from './known-hosts.js';
import { TransportError } from './types.js';

type HostKeyAlgorithm = 'ssh-ed25519' | 'ecdsa-sha2-nistp256' | 'ecdsa-sha2-nistp384' | 'ecdsa-sha2-nistp521' | 'rsa-sha2-512' | 'rsa-sha2-256';
// Fastest first, as OpenSSH itself prefers. No SHA-1.
const HOST_KEY_ALGORITHMS: HostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
];
/** Signature algorithms that prove possession of a known_hosts key of this type. */
const ALGORITHMS_FOR_KEY_TYPE: Record<string, HostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256'],
};

/**
 * Like ssh(1): ask first for the key types already recorded for this host, so a host with both
 * an ed25519 and an rsa key recorded as rsa is verified against its rsa line, not "unknown".
 */
export function hostKeyAlgorithms(recorded: string[]): HostKeyAlgorithm[] {
  const first = recorded.flatMap((t) => ALGORITHMS_FOR_KEY_TYPE[t] ?? []);
  return [...first, ...HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}

/** How the decision's messages name the VM (`say`) and its sshd (`where`), and where a recorded key is told. */
export interface HostKeyContext {
  say: (text: string) => string;
  where: string;
  log: (msg: string) => void;
}

/**
 * Decide on the server's host key against `entries` (the target's known_hosts): resolves to accept (a new key
 * recorded first under accept-new), rejects with a host-key (or, when it cannot be recorded, 'config') TransportError.
 */
export async function verifyHostKey(target: SshTarget, entries: KnownHostEntry[], key: Buffer, ctx: HostKeyContext): Promise<void> {
  const { say, where } = ctx;
  const file = target.knownHostsFile;
  const keyType = blobKeyType(key) ?? 'unknown';
  const shown = `${keyType} ${fingerprint(key)}`;
  const removeHint = `\`ssh-keygen -R '${knownHostName(target.host, target.port)}' -f ${file}\``;
  const verdict = checkHostKey(entries, target.host, target.port, key);
  switch (verdict.kind) {
    case 'match':
      return;
    case 'revoked':
      throw new TransportError(say(`the host key of ${where} (${shown}) is marked @revoked in ${file} line ${verdict.line}; refusing to connect`), 'host-key-changed');
    case 'changed':
      throw new TransportError(
        say(
          `the host key of ${where} (${shown}) does not match ${file} line ${verdict.line}; this may be a man-in-the-middle attack or a reinstalled VM — if the VM was reinstalled, remove the old line with ${removeHint}`,
        ),
        'host-key-changed',
      );
    case 'unknown': {
      const other = verdict.otherTypes.find((o) => ALGORITHMS_FOR_KEY_TYPE[o.keyType]);
      if (other) {
        // We asked for the recorded type first; a server that no longer has it is suspect.
        throw new TransportError(
          say(
            `${where} offered a ${shown} host key, but ${file} line ${other.line} records a ${other.keyType} key it no longer presents; this may be a man-in-the-middle attack or a reinstalled VM — if the VM was reinstalled, remove the old line with ${removeHint}`,
          ),
          'host-key-changed',
        );
      }
      if (target.hostKeyPolicy === 'strict') {
        throw new TransportError(
          say(
            `the host key of ${where} (${shown}) is not in ${file}; check it, then run with --accept-new-host-keys or \`ssh-keyscan -p ${target.port} ${target.host} >> ${file}\``,
          ),
          'host-key-unknown',
        );
      }
      try {
        await appendKnownHost(expandHome(file), target.host, target.port, key);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        throw new TransportError(say(`cannot record the host key of ${where} in ${file} (${code}); check ssh.known_hosts`), 'config', {
          cause: err,
        });
      }
      ctx.log(`VM ${target.vm}: recorded the new host key of ${where} (${shown}) in ${file}`);
      return;
    }
  }
}
