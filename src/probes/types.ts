import type { Duplex } from 'node:stream';
import type { HealthStatus, ProbeTransport } from '../report.js';
import type { ExecOptions, ExecResult } from '../transport/types.js';

/** What a probe found. The engine adds name, timestamp and duration. */
export interface ProbeOutcome {
  status: HealthStatus;
  message: string;
  details?: Record<string, unknown>;
  /** Which way the probe reached its target; the engine fills it in when the probe leaves it out. */
  transport?: ProbeTransport;
}

export interface ConnectOptions {
  /** Open the stream from inside the guest (through the SSH tunnel) whatever the host. */
  fromGuest?: boolean;
}

/** What a probe may use to reach one VM. */
export interface ProbeTarget {
  vm: string;
  /** The VM's address as the hypervisor reaches it. */
  address: string;
  /** Run a command in the guest (over the VM's pooled SSH connection). Throws TransportError. */
  exec(command: string, options: ExecOptions): Promise<ExecResult>;
  /**
   * Open a TCP stream for a check's host:port. `localhost`, `127.0.0.1` and `::1` mean the guest
   * and go through the SSH tunnel; any other host is dialled from the hypervisor.
   * Throws TransportError when the tunnel cannot be had; a refused connection is an ordinary error.
   * `remote`: for `localhost`, the guest address that answered (127.0.0.1 or ::1).
   * `fromGuest` dials any host from inside the guest (the dns probe asks the guest's own resolver).
   */
  connect(host: string, port: number, signal: AbortSignal, options?: ConnectOptions): Promise<{ socket: Duplex; via: ProbeTransport; remote?: string }>;
}

/** Every probe type is one function of this shape (cf. blackbox_exporter's ProbeFn). */
export type Probe<C> = (check: C, target: ProbeTarget, signal: AbortSignal) => Promise<ProbeOutcome>;
