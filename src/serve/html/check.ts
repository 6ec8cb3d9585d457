/** One check: status and facts, uptime bars for 24 h / 7 d / 30 d, the response-time sparkline, the transitions. */
import type { CheckView } from '../queries.js';
import { html, seg, type Html } from './escape.js';
import { bars, pill, sparkline, uptimeText, utc, when } from './parts.js';

export function checkHead(vm: string, check: string): Html {
  return html`<p><a href="/">Fleet</a> › <a href="/vms/${seg(vm)}">${vm}</a> › ${check}</p>`;
}

export function checkContent(v: CheckView): Html {
  const c = v.check;
  const first = v.windows[0]!;
  return html`<h1>${c.vm} / ${c.check} ${pill(c.status)}</h1>
<dl class="facts">
<dt>Status</dt><dd>${c.status} since ${when(c.since, v.now)}${c.last_result_status !== c.status ? html` (latest result ${c.last_result_status}; ${c.consecutive_failures} failure${c.consecutive_failures === 1 ? '' : 's'} in a row)` : ''}</dd>
<dt>Last result</dt><dd>${when(c.last_result_at, v.now)}${c.stale ? html` <strong>— no recent result: is a watch writing to this store?</strong>` : ''}</dd>
<dt>Message</dt><dd class="msg">${c.message}</dd>
${c.type ? html`<dt>Type</dt><dd>${c.type}${c.critical ? ', critical' : ''}</dd>` : ''}
${c.tags.length ? html`<dt>Tags</dt><dd>${c.tags.join(', ')}</dd>` : ''}
${v.alert ? html`<dt>Alert</dt><dd data-alert="${v.alert.flapping ? 'flapping' : 'firing'}">${v.alert.flapping ? 'flapping' : 'firing'}${v.alert.since !== undefined ? html` since ${when(v.alert.since, v.now)}` : ''}</dd>` : ''}
${v.silence ? html`<dt>Silenced</dt><dd data-silenced="true">until ${utc(v.silence.until)}: ${v.silence.reason}</dd>` : ''}
</dl>
${v.windows.map(
  (w) => html`<section data-window="${w.window.key}"><h2>Last ${w.window.label}: ${uptimeText(w.uptime)}</h2>
${bars(w.bars, w.window.bucketMs, `${c.check}, last ${w.window.label}, one bar per ${w.window.bucketMs >= 86_400_000 ? 'day' : `${w.window.bucketMs / 3_600_000} hours`}: ${uptimeText(w.uptime)}`)}
<div class="axis muted" aria-hidden="true"><span>${utc(w.bars[0]!.start).slice(0, 16)}</span><span>now</span></div></section>`,
)}
<h2>Response time, last 24 hours</h2>
${sparkline(first.bars, 'Mean response time per 30 minutes')}
<h2>Transitions, last 30 days</h2>
${
  v.transitions.length
    ? html`<table class="stack transitions"><thead><tr><th scope="col">When</th><th scope="col">Change</th><th scope="col">Message</th></tr></thead><tbody>${v.transitions.map(
        (t) => html`<tr data-to="${t.to}"><td>${utc(t.ts)}</td><td>${t.from ?? '(first result)'} → ${pill(t.to)}${t.hard ? '' : html` <span class="muted">(soft)</span>`}</td><td class="msg">${t.message}</td></tr>`,
      )}</tbody></table>`
    : html`<p class="muted">No transitions in the last 30 days.</p>`
}
<h2>Data</h2><p><a href="/api/v1/vms/${seg(c.vm)}/checks/${seg(c.check)}/history?since=24h">History as JSON</a> · badge <img src="/badge/${seg(c.vm)}/${seg(c.check)}.svg" alt="badge: ${c.check} ${c.status}"></p>`;
}
