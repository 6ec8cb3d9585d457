import { VirshBackend } from '../../src/inventory/virsh.js';
import { backendContract } from './contract.js';

// The same expectations as the native backend, against the same fixture.
backendContract('virsh', async (uri) => new VirshBackend(uri));
