/** One VM: its checks with status, since, the last 24 hours as bars, and the latest message. */
import type { VmView } from '../queries.js';
import { html, seg, type Html } from './escape.js';
import { bars, pill, uptimeText, when } from './parts.js';
import { WINDOW_24H, uptimeOf } from '../uptime.js';

export function vmHead(vm: string): Html {
  return html`<p><a href="/">Fleet</a> › ${vm}</p>`;
}

export function vmContent(v: VmView): Html {
  const s = v.summary;
  return html`<h1>${s.vm} ${pill(s.status)}</h1>
<p>Since ${when(s.since, v.now)} · last result ${when(s.last_result_at, v.now)} · last 24 hours: ${uptimeText(v.uptime24h)} · <a href="/api/v1/vms/${seg(s.vm)}">JSON</a></p>
<table class="stack"><caption class="sr">Checks of ${s.vm}</caption><thead><tr><th scope="col">Check</th><th scope="col">Status</th><th scope="col">Since</th><th scope="col">Last 24 hours</th><th scope="col">Latest message</th></tr></thead><tbody>${s.checks.map((c) => {
    const b = v.bars.get(c.check) ?? [];
    const u = uptimeOf(b);
    return html`<tr data-check="${c.check}" data-status="${c.status}"><th scope="row"><a href="/vms/${seg(s.vm)}/checks/${seg(c.check)}">${c.check}</a>${c.critical ? html` <span class="muted">(critical)</span>` : ''}</th><td>${pill(c.status)}${c.last_result_status !== c.status ? html`<br><span class="muted">latest result ${c.last_result_status}</span>` : ''}</td><td>${when(c.since, v.now)}</td><td>${bars(b, WINDOW_24H.bucketMs, `${c.check}, last 24 hours: ${uptimeText(u)}`, true)}<span class="muted">${uptimeText(u)}</span></td><td class="msg">${c.message}</td></tr>`;
  })}</tbody></table>
<h2>Badge</h2><p><img src="/badge/${seg(s.vm)}.svg" alt="badge: ${s.vm} ${s.status}"> <code>/badge/${seg(s.vm)}.svg</code></p>`;
}
