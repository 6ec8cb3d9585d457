/** Pieces shared by the pages: status pills, times, uptime bars, the response-time sparkline. */
import type { HealthStatus } from '../../report.js';
import { formatUptime } from '../badge.js';
import type { Bar, Uptime } from '../uptime.js';
import { html, type Html } from './escape.js';

/** Never colour alone: a glyph and the word go with every colour. */
export const GLYPH: Record<HealthStatus, string> = { HEALTHY: '✔', DEGRADED: '▲', UNHEALTHY: '✖', UNKNOWN: '?' };

export function pill(status: HealthStatus): Html {
  return html`<span class="pill s-${status}" data-status="${status}"><span aria-hidden="true">${GLYPH[status]} </span>${status}</span>`;
}

/** `2026-03-01 12:00:00 UTC` */
export function utc(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
}

export function ago(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min ago`;
  return `${Math.floor(h / 24)} days ago`;
}

export function when(ms: number, now: number): Html {
  if (!ms) return html`<span class="muted">never</span>`;
  return html`<time datetime="${new Date(ms).toISOString()}" title="${utc(ms)}">${ago(ms, now)}</time>`;
}

function span(start: number, end: number, bucketMs: number): string {
  const a = utc(start);
  const b = utc(end);
  // Within a day, the end's date adds nothing.
  return bucketMs < 86_400_000 ? `${a.slice(0, 16)}–${b.slice(11, 16)} UTC` : `${a.slice(0, 10)} (UTC day)`;
}

/** What hovering a bar says: its time, its worst status and that status's latest message, and the counts. */
export function barTitle(b: Bar, bucketMs: number): string {
  const range = span(b.start, b.end, bucketMs);
  if (b.status === null) return `${range}: no results`;
  const total = b.counts.HEALTHY + b.counts.DEGRADED + b.counts.UNHEALTHY + b.counts.UNKNOWN;
  const counts = (['UNHEALTHY', 'DEGRADED', 'UNKNOWN'] as const)
    .filter((s) => b.counts[s] > 0)
    .map((s) => `${b.counts[s]} ${s}`)
    .join(', ');
  return `${range}: ${b.status}${b.message ? ` — ${b.message}` : ''} (${total} result${total === 1 ? '' : 's'}${counts ? `: ${counts}` : ''})`;
}

export function bars(list: readonly Bar[], bucketMs: number, label: string, mini = false): Html {
  return html`<div class="bars${mini ? ' mini' : ''}" role="img" aria-label="${label}">${list.map(
    (b) => html`<span class="s-${b.status ?? 'none'}" data-status="${b.status ?? 'none'}" title="${barTitle(b, bucketMs)}"></span>`,
  )}</div>`;
}

export function uptimeText(u: Uptime): string {
  return u.ratio === null ? 'no evaluated results' : `${formatUptime(u.ratio)} up`;
}

const fmtMs = (v: number) => (v >= 100 ? `${Math.round(v)} ms` : `${v.toFixed(1)} ms`);

/** Mean response time per bar as a line; gaps where a bucket has no evaluated result. */
export function sparkline(list: readonly Bar[], label: string): Html {
  const values = list.map((b) => b.mean_ms);
  const known = values.filter((v): v is number => v !== null);
  if (known.length === 0) return html`<p class="muted">No response times recorded in this window.</p>`;
  const max = Math.max(...known);
  const min = Math.min(...known);
  const w = 480;
  const h = 60;
  const step = list.length > 1 ? w / (list.length - 1) : w;
  const runs: string[][] = [];
  let run: string[] | undefined;
  values.forEach((v, i) => {
    if (v === null) return void (run = undefined);
    if (!run) runs.push((run = []));
    const y = max === 0 ? h - 2 : h - 2 - (v / max) * (h - 6);
    run.push(`${(i * step).toFixed(1)},${y.toFixed(1)}`);
  });
  const latest = known.at(-1)!;
  const summary = `${label}: min ${fmtMs(min)}, max ${fmtMs(max)}, latest ${fmtMs(latest)}`;
  return html`<svg class="spark" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="${summary}"><title>${summary}</title>${runs.map((r) =>
    r.length === 1
      ? html`<circle cx="${r[0]!.split(',')[0]}" cy="${r[0]!.split(',')[1]}" r="2" fill="#0550ae"/>`
      : html`<polyline fill="none" stroke="#0550ae" stroke-width="2" vector-effect="non-scaling-stroke" points="${r.join(' ')}"/>`,
  )}</svg><p class="muted">${summary}</p>`;
}
