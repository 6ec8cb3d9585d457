/** `type` → probe. Adding a probe type: one file, one schema entry, one line here, one test. */
import type { HealthCheck } from '../config/schema.js';
import type { ProbeTransport } from '../report.js';
import { commandProbe } from './command.js';
import { diskProbe } from './disk.js';
import { httpProbe } from './http.js';
import { memoryProbe } from './memory.js';
import { guardedProbe, pluginProbe, type RegisteredProbe } from './plugins.js';
import { scriptProbe } from './script.js';
import { tcpProbe } from './tcp.js';
import type { Probe } from './types.js';

/** A probe whose module (and its dependencies: http2, dns-packet) loads on first use, so CLI start stays fast. */
function lazy<C>(load: () => Promise<Probe<C>>): Probe<C> {
  let probe: Promise<Probe<C>> | undefined;
  return async (check, target, signal) => (await (probe ??= load()))(check, target, signal);
}

type ProbeFor = { [K in HealthCheck['type']]: Probe<Extract<HealthCheck, { type: K }>> };

export const PROBES: ProbeFor = {
  http: httpProbe,
  tcp: tcpProbe,
  command: commandProbe,
  script: scriptProbe,
  disk: diskProbe,
  memory: memoryProbe,
  grpc: lazy(async () => (await import('./grpc.js')).grpcProbe),
  dns: lazy(async () => (await import('./dns.js')).dnsProbe),
};

const guarded = new WeakMap<RegisteredProbe, Probe<never>>();

/** A plugin's check runs guarded (plugins.ts): whatever it does, the check gets an outcome. */
function pluginProbeFor(type: string): Probe<never> {
  const entry = pluginProbe(type);
  if (!entry) return async () => ({ status: 'UNKNOWN', message: `no probe for type "${type}" (is its plugin still listed under plugins:?)` });
  let probe = guarded.get(entry);
  if (!probe) guarded.set(entry, (probe = guardedProbe(entry) as Probe<never>));
  return probe;
}

export function probeFor<C extends HealthCheck>(check: C): Probe<C> {
  return (Object.hasOwn(PROBES, check.type) ? PROBES[check.type] : pluginProbeFor(check.type)) as unknown as Probe<C>;
}

/** `localhost` in a check means the guest, never the hypervisor. */
export function isGuestLocal(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || h === '127.0.0.1' || h.endsWith('.localhost');
}

/** The way a check reaches its target, known before it runs. */
export function transportOf(check: HealthCheck): ProbeTransport {
  switch (check.type) {
    case 'http':
      return isGuestLocal(new URL(check.url).hostname) ? 'ssh-tunnel' : 'host';
    case 'tcp':
      return isGuestLocal(check.host) ? 'ssh-tunnel' : 'host';
    case 'grpc':
      return isGuestLocal(check.address.replace(/:\d+$/, '')) ? 'ssh-tunnel' : 'host';
    case 'dns':
      // No server: the guest's own resolver, asked from inside the guest.
      return check.server === undefined || isGuestLocal(check.server.replace(/:\d+$/, '')) ? 'ssh-tunnel' : 'host';
    case 'command':
    case 'script':
    case 'disk':
    case 'memory':
      return 'ssh';
    default:
      return pluginProbe((check as { type: string }).type)?.transport ?? 'ssh';
  }
}

/** Does this check need the guest's SSH connection? */
export function needsGuest(check: HealthCheck): boolean {
  return transportOf(check) !== 'host';
}
