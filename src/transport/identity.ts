/** The keys a dial logs in with: private key files (read and checked once per file by the pool) and ssh-agent. */
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { AgentAuthMethod, ConnectConfig, ParsedKey, PublicKeyAuthMethod } from 'ssh2';
import { expandHome } from '../util/home.js';
import type { SshTarget } from './connect.js';
import { TransportError } from './types.js';

const { utils } = ssh2;

/** Read and parse a private key, turning every way it can fail into a 'config' TransportError. */
export async function readIdentity(file: string): Promise<Buffer> {
  let data: Buffer;
  try {
    data = await readFile(expandHome(file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new TransportError(`cannot read the identity file ${file} (${code}); check ssh.identity_file`, 'config', { cause: err });
  }
  const parsed = utils.parseKey(data);
  if (parsed instanceof Error) {
    if (/encrypt|passphrase/i.test(parsed.message)) {
      throw new TransportError(
        `the identity file ${file} is protected by a passphrase; load it into ssh-agent with \`ssh-add ${file}\` and leave ssh.identity_file unset`,
        'config',
      );
    }
    throw new TransportError(`the identity file ${file} is not a private key this tool can read (${parsed.message})`, 'config');
  }
  const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  if (!key?.isPrivateKey()) {
    throw new TransportError(`the identity file ${file} holds no private key (is it the .pub file?); check ssh.identity_file`, 'config');
  }
  return data;
}

/** How a dial authenticates, and how its messages name what was offered. */
export interface Credentials {
  auth: Pick<ConnectConfig, 'privateKey' | 'agent' | 'authHandler'>;
  /** `the key ~/.ssh/id_ed25519`, `every key in ssh-agent`, … */
  credential: string;
  /** The ssh-agent socket offered, if any. */
  agent?: string;
}

/**
 * Keys in order (OpenSSH's several IdentityFile), then ssh-agent where allowed. A key that cannot be read is
 * skipped when another can be used, as ssh(1) does; alone, it is the error. `say` prefixes a message with the VM.
 */
export async function credentials(
  target: SshTarget,
  loadIdentity: (file: string) => Promise<Buffer>,
  log: (msg: string) => void,
  say: (text: string) => string,
  where: string,
): Promise<Credentials> {
  const files = [...new Set([...(target.identityFile ? [target.identityFile] : []), ...(target.identityFiles ?? [])])];
  const keys: { file: string; data: Buffer }[] = [];
  let unreadable: TransportError | undefined;
  for (const file of files) {
    try {
      keys.push({ file, data: await loadIdentity(file) });
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      unreadable ??= new TransportError(say(`cannot log in to ${where}: ${err.message}`), err.kind, { cause: err.cause });
      if (files.length > 1) log(say(`skipping the identity file ${file}: ${err.message}`));
    }
  }
  const agentAllowed = target.useAgent ?? files.length === 0;
  const agent = agentAllowed ? (target.agentSocket ?? process.env.SSH_AUTH_SOCK) : undefined;
  if (keys.length === 0 && !agent) {
    if (unreadable) throw unreadable;
    throw new TransportError(say(`no SSH key to log in to ${where} with; set ssh.identity_file or start ssh-agent (SSH_AUTH_SOCK)`), 'config');
  }
  const auth: Credentials['auth'] = {};
  if (keys.length === 1 && !agent) auth.privateKey = keys[0]!.data;
  else if (keys.length === 0) auth.agent = agent;
  else {
    auth.agent = agent;
    const methods: (PublicKeyAuthMethod | AgentAuthMethod)[] = keys.map((k) => ({ type: 'publickey', username: target.user, key: k.data }));
    if (agent) methods.push({ type: 'agent', username: target.user, agent });
    auth.authHandler = methods;
  }
  const credential =
    keys.length === 0
      ? 'every key in ssh-agent'
      : `${keys.length === 1 ? 'the key' : 'the keys'} ${keys.map((k) => k.file).join(', ')}${agent ? ' and every key in ssh-agent' : ''}`;
  return { auth, credential, ...(agent ? { agent } : {}) };
}
