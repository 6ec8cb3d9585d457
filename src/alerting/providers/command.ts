/**
 * A command on this host, the Nagios/Monit way: `/bin/sh -c COMMAND` with the notification as JSON on stdin and
 * its main fields in `CLONEBOX_ALERT_*` variables. Exit 0 is delivered; anything else (or the timeout) is not,
 * and is retried. The command runs in its own process group, so a timeout stops all of it.
 */
import { spawn } from 'node:child_process';
import type { CommandProvider } from '../../config/schema.js';
import { DeliveryError, type AlertNotification, type NotificationProvider } from '../types.js';

export function commandEnv(n: AlertNotification): Record<string, string> {
  return {
    CLONEBOX_ALERT_ID: n.id,
    CLONEBOX_ALERT_EVENT: n.event,
    CLONEBOX_ALERT_STATUS: n.status,
    CLONEBOX_ALERT_KEY: n.alert_key,
    CLONEBOX_ALERT_VM: n.vm,
    CLONEBOX_ALERT_CHECK: n.check ?? '',
    CLONEBOX_ALERT_STATE: n.state,
    CLONEBOX_ALERT_MESSAGE: n.message,
  };
}

export function commandProvider(cfg: CommandProvider): NotificationProvider {
  return {
    name: cfg.name ?? cfg.type,
    type: cfg.type,
    timeoutMs: cfg.timeout,
    secrets: [],
    send: (n, signal) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn('/bin/sh', ['-c', cfg.command], { detached: true, stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, ...commandEnv(n) } });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => {
          if (stderr.length < 2048) stderr += d.toString('utf8');
        });
        const kill = () => {
          try {
            if (child.pid) process.kill(-child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        };
        signal.addEventListener('abort', kill, { once: true });
        child.stdin.on('error', () => undefined); // a command that does not read stdin
        child.stdin.end(`${JSON.stringify(n)}\n`);
        child.on('error', (err) => {
          signal.removeEventListener('abort', kill);
          reject(new DeliveryError(`cannot start /bin/sh: ${err.message}`));
        });
        child.on('close', (code, sig) => {
          signal.removeEventListener('abort', kill);
          if (signal.aborted) return reject(new DeliveryError('the command did not finish in time; stopped'));
          if (code === 0) return resolve();
          const why = stderr.trim().split('\n').slice(-1)[0]?.slice(0, 200);
          reject(new DeliveryError(`the command ${code === null ? `was killed by ${sig}` : `exited ${code}`}${why ? `: ${why}` : ''}`));
        });
      }),
  };
}
