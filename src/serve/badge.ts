/**
 * SVG badges for READMEs and wikis (`/badge/{vm}.svg`, `/badge/{vm}/{check}.svg`), in the flat style people know
 * from shields.io: the name on the left, status and 24-hour uptime on the right. Text is escaped like HTML, so
 * any VM name is only ever text.
 */
import type { HealthStatus } from '../report.js';
import { escapeHtml } from './html/escape.js';

/** Status colours with white text at a contrast of at least 4.5:1 (also used by the page). */
export const STATUS_COLOURS: Record<HealthStatus | 'NONE', string> = {
  HEALTHY: '#1a7f37',
  DEGRADED: '#8a5300',
  UNHEALTHY: '#c0262d',
  UNKNOWN: '#59636e',
  NONE: '#59636e',
};

/** Uptime as people read it: never rounded up to 100 %. */
export function formatUptime(ratio: number | null): string {
  if (ratio === null) return 'no data';
  if (ratio >= 1) return '100%';
  return `${(Math.floor(ratio * 1000) / 10).toFixed(1)}%`;
}

/** Approximate width of 11 px Verdana/DejaVu Sans text: narrow, wide and average characters. */
export function textWidth(text: string): number {
  let w = 0;
  for (const ch of text) {
    if ('il.,:;!|\'1 ()[]/'.includes(ch)) w += 4;
    else if ('mwMW%@'.includes(ch)) w += 10;
    else if (ch >= 'A' && ch <= 'Z') w += 7.5;
    else w += 6.5;
  }
  return Math.ceil(w);
}

const clip = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

export interface BadgeInput {
  label: string;
  message: string;
  colour: string;
}

export function badgeSvg({ label, message, colour }: BadgeInput): string {
  const l = clip(label, 48);
  const m = clip(message, 48);
  const lw = textWidth(l) + 12;
  const mw = textWidth(m) + 12;
  const w = lw + mw;
  const title = escapeHtml(`${l}: ${m}`);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="20" role="img" aria-label="${title}"><title>${title}</title>` +
    `<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>` +
    `<clipPath id="r"><rect width="${w}" height="20" rx="3" fill="#fff"/></clipPath>` +
    `<g clip-path="url(#r)"><rect width="${lw}" height="20" fill="#555"/><rect x="${lw}" width="${mw}" height="20" fill="${escapeHtml(colour)}"/><rect width="${w}" height="20" fill="url(#s)"/></g>` +
    `<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">` +
    `<text x="${lw / 2}" y="14">${escapeHtml(l)}</text><text x="${lw + mw / 2}" y="14">${escapeHtml(m)}</text></g></svg>`
  );
}

export function statusBadge(label: string, status: HealthStatus | undefined, uptime: number | null): string {
  if (!status) return badgeSvg({ label, message: 'not found', colour: STATUS_COLOURS.NONE });
  return badgeSvg({ label, message: uptime === null ? status : `${status} ${formatUptime(uptime)}`, colour: STATUS_COLOURS[status] });
}
