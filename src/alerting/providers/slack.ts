/**
 * Slack's incoming-webhook format (`text` plus one attachment), which Mattermost and Rocket.Chat accept too.
 * A webhook URL is itself the credential: errors name only its host.
 */
import type { SlackProvider } from '../../config/schema.js';
import type { AlertNotification, NotificationProvider } from '../types.js';
import { postJson } from './http.js';

const COLOUR: Record<string, string> = { firing: '#d00000', resolved: '#2eb886', flapping: '#e8a317', flapping_stopped: '#439fe0', test: '#439fe0' };

export function slackTitle(n: AlertNotification): string {
  switch (n.event) {
    case 'firing':
      return `${n.repeat > 0 ? 'Still ' : ''}${n.scope === 'vm' ? 'UNREACHABLE' : n.state}: ${n.alert_key}`;
    case 'resolved':
      return `Resolved: ${n.alert_key}`;
    case 'flapping':
      return `Flapping: ${n.alert_key}`;
    case 'flapping_stopped':
      return `Stopped flapping: ${n.alert_key} is ${n.state}`;
    case 'test':
      return 'clonebox test notification';
  }
}

export function toSlack(n: AlertNotification, cfg: Pick<SlackProvider, 'channel' | 'username'>): Record<string, unknown> {
  const title = slackTitle(n);
  const fields = [
    { title: 'VM', value: n.vm, short: true },
    ...(n.check ? [{ title: 'Check', value: `${n.check} (${n.check_type ?? '?'})`, short: true }] : []),
    { title: 'State', value: n.state, short: true },
    { title: 'Since', value: n.since, short: true },
  ];
  return {
    text: `${title}${n.links.details ? ` <${n.links.details}|details>` : ''}`,
    ...(cfg.channel ? { channel: cfg.channel } : {}),
    username: cfg.username ?? 'clonebox',
    attachments: [{ fallback: `${title}: ${n.message}`, color: COLOUR[n.event], text: n.message, fields, footer: `clonebox · ${n.id}`, ts: Math.floor(Date.parse(n.at) / 1000) }],
  };
}

export function slackProvider(cfg: SlackProvider): NotificationProvider {
  const u = new URL(cfg.url);
  return {
    name: cfg.name ?? cfg.type,
    type: cfg.type,
    timeoutMs: cfg.timeout,
    // The path and query are the token; `redactUrl` would print them.
    secrets: [cfg.url, `${u.pathname}${u.search}`].filter((s) => s.length > 1),
    send: (n, signal) => postJson(cfg.url, toSlack(n, cfg), {}, signal),
  };
}
