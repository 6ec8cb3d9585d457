/**
 * clonebox-health as a library, for programs that embed the engine:
 *
 *   import { registerProbe, loadConfig, checkFleet, openBackend, SshPool } from 'clonebox-health';
 *   registerProbe('kafka', { schema: (z) => ({ brokers: z.array(z.string()) }), run: async (check, target, signal) => … });
 *   const config = await loadConfig('.clonebox.yaml');
 *
 * Plugin authors need only registerProbe's shape (docs/plugins.md); a plugin module gets
 * registerProbe and zod passed in, so it never imports this package.
 */
export { registerProbe, PluginError, type PluginCheck, type ProbePlugin } from './probes/plugins.js';
export type { ConnectOptions, Probe, ProbeOutcome, ProbeTarget } from './probes/types.js';
export { z } from 'zod';
export { loadConfig, parseConfig } from './config/load.js';
export { ConfigError } from './config/errors.js';
export type { CloneboxConfig, HealthCheck } from './config/schema.js';
export { checkFleet, type FleetRunOptions } from './engine/fleet.js';
export { openBackend } from './inventory/open.js';
export { SshPool } from './transport/ssh-pool.js';
export { TransportError, type ExecOptions, type ExecResult } from './transport/types.js';
export type { CheckResult, FleetReport, HealthStatus, VMHealthReport } from './report.js';
