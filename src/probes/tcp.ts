import type { TcpCheck } from '../config/schema.js';
import { outcomeFromError } from './common.js';
import type { Probe } from './types.js';

/** Healthy when a TCP connection to host:port opens (`localhost` = inside the guest, through SSH). */
export const tcpProbe: Probe<TcpCheck> = async (check, target, signal) => {
  const where = `${check.host}:${check.port}`;
  const started = performance.now();
  try {
    const { socket, via, remote } = await target.connect(check.host, check.port, signal);
    socket.destroy();
    const ms = Math.round(performance.now() - started);
    return {
      status: 'HEALTHY',
      message: `connected to ${where}${via === 'ssh-tunnel' ? ' in the guest' : ''} in ${ms}ms`,
      transport: via,
      details: { host: check.host, port: check.port, connect_ms: ms, ...(remote ? { remote_address: remote } : {}) },
    };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED') {
      return { status: 'UNHEALTHY', message: `connection to ${where} refused: nothing listens there`, details: { host: check.host, port: check.port, error_code: code } };
    }
    return outcomeFromError(err, signal, check.timeout, `connecting to ${where}`);
  }
};
