/** Pick the libvirt backend: the in-process binding where it loads, else virsh (said once in verbose output). */
import type { LibvirtBackend } from './types.js';
import { LibvirtError } from './types.js';

export type BackendChoice = 'auto' | 'native' | 'virsh';

async function openNative(uri: string, log: (msg: string) => void): Promise<LibvirtBackend> {
  const { openNativeBackend } = await import('./native.js');
  try {
    return await openNativeBackend(uri);
  } catch (err) {
    // A read-write connection may be refused where a read-only one is allowed (qemu:///system as a
    // non-root user): fall back to read-only, which loses only the guest-agent address source.
    if (err instanceof LibvirtError && err.kind === 'connect' && /permission|denied|authentication|polkit/i.test(err.message)) {
      log(`libvirt: read-write connection refused (${err.message}); using a read-only connection (no agent address source)`);
      return openNativeBackend(uri, { readOnly: true });
    }
    throw err;
  }
}

export async function openBackend(uri: string, choice: BackendChoice, log: (msg: string) => void): Promise<LibvirtBackend> {
  if (choice !== 'virsh') {
    const { loadNativeBinding } = await import('./native.js');
    const load = loadNativeBinding();
    if ('binding' in load) {
      log(`libvirt: native binding, ${uri}`);
      return openNative(uri, log);
    }
    if (choice === 'native') {
      throw new LibvirtError(`the native libvirt binding cannot be used: ${load.error}; build it with npm run build:native, or use --libvirt-backend virsh`);
    }
    log(`libvirt: native binding unavailable (${load.error}); falling back to virsh`);
  } else {
    log(`libvirt: virsh, ${uri}`);
  }
  const { VirshBackend } = await import('./virsh.js');
  return new VirshBackend(uri);
}

/** One libvirt connection per URI for the life of a run (several hypervisors); a failed open is retried next time. */
export class BackendCache {
  readonly #open = new Map<string, Promise<LibvirtBackend>>();

  constructor(
    private readonly choice: BackendChoice,
    private readonly log: (msg: string) => void,
  ) {}

  get(uri: string): Promise<LibvirtBackend> {
    let b = this.#open.get(uri);
    if (!b) {
      b = openBackend(uri, this.choice, this.log);
      this.#open.set(uri, b);
      b.catch(() => this.#open.delete(uri));
    }
    return b;
  }

  async close(): Promise<void> {
    const all = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(all.map(async (b) => (await b.catch(() => undefined))?.close()));
  }
}
