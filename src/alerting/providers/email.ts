/**
 * E-mail through SMTP with nodemailer: STARTTLS when the server offers it (or required), implicit TLS with
 * `tls: true` (port 465), AUTH when a username is given. The Message-ID derives from the notification id, so
 * a retried delivery is the same message to any mail system that de-duplicates.
 */
import type { EmailProvider } from '../../config/schema.js';
import { DeliveryError, type AlertNotification, type NotificationProvider } from '../types.js';
import { slackTitle } from './slack.js';

// Loaded on the first e-mail sent, not by every command that reads the config (~60 modules).
type Nodemailer = typeof import('nodemailer').default;
let loaded: Promise<Nodemailer> | undefined;
const mailer = (): Promise<Nodemailer> => (loaded ??= import('nodemailer').then((m) => m.default));

export function emailSubject(n: AlertNotification): string {
  return `[clonebox] ${slackTitle(n)}`;
}

export function emailText(n: AlertNotification): string {
  const lines = [
    slackTitle(n),
    '',
    n.message,
    '',
    `VM:        ${n.vm}${n.hypervisor ? ` on ${n.hypervisor}` : ''}`,
    ...(n.check ? [`Check:     ${n.check} (${n.check_type ?? '?'})`] : []),
    `State:     ${n.state}${n.previous_state ? ` (was ${n.previous_state})` : ''}`,
    `Since:     ${n.since}`,
    `Event:     ${n.event}${n.repeat ? ` (repeat ${n.repeat})` : ''}`,
    ...(n.links.details ? [`Details:   ${n.links.details}`] : []),
    `Id:        ${n.id}`,
  ];
  return `${lines.join('\n')}\n`;
}

export function emailProvider(cfg: EmailProvider): NotificationProvider {
  const secrets = cfg.password ? [cfg.password] : [];
  return {
    name: cfg.name ?? cfg.type,
    type: cfg.type,
    timeoutMs: cfg.timeout,
    secrets,
    send: async (n, signal) => {
      const transport = (await mailer()).createTransport({
        host: cfg.host,
        port: cfg.port,
        secure: cfg.tls,
        requireTLS: cfg.require_starttls,
        tls: { rejectUnauthorized: !cfg.insecure },
        ...(cfg.username ? { auth: { user: cfg.username, pass: cfg.password ?? '' } } : {}),
        connectionTimeout: cfg.timeout,
        greetingTimeout: cfg.timeout,
        socketTimeout: cfg.timeout,
      });
      const stop = () => transport.close();
      signal.addEventListener('abort', stop, { once: true });
      try {
        const sent = transport.sendMail({
          from: cfg.from,
          to: cfg.to,
          subject: emailSubject(n),
          text: emailText(n),
          messageId: `<${n.id}@clonebox>`,
          headers: { 'X-Clonebox-Notification-Id': n.id, 'X-Clonebox-Event': n.event },
        });
        const aborted = new Promise<never>((_, reject) => {
          if (signal.aborted) reject(new DeliveryError(`no answer from ${cfg.host}:${cfg.port} in time`));
          signal.addEventListener('abort', () => reject(new DeliveryError(`no answer from ${cfg.host}:${cfg.port} in time`)), { once: true });
        });
        sent.catch(() => undefined);
        const info = (await Promise.race([sent, aborted])) as { rejected?: unknown[] };
        if (Array.isArray(info.rejected) && info.rejected.length > 0) {
          throw new DeliveryError(`${cfg.host}:${cfg.port} refused ${info.rejected.length} of ${cfg.to.length} recipients`);
        }
      } catch (err) {
        if (err instanceof DeliveryError) throw err;
        const e = err as { code?: string; response?: string; message?: string };
        throw new DeliveryError(`SMTP ${cfg.host}:${cfg.port}: ${e.response ?? e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}`);
      } finally {
        signal.removeEventListener('abort', stop);
        transport.close();
      }
    },
  };
}
