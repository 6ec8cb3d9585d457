/** The fleet page: counts per status, a filter that works without JavaScript, and one row per VM with its checks. */
import { STATUSES, type StatusCounts } from '../../report.js';
import type { CheckSummary, FleetFilter, FleetView, VmSummary } from '../queries.js';
import { html, seg, type Html } from './escape.js';
import { GLYPH, pill, utc, when } from './parts.js';


function query(filter: FleetFilter): string {
  const q = new URLSearchParams();
  if (filter.status) q.set('status', filter.status);
  if (filter.vm) q.set('vm', filter.vm);
  if (filter.tag) q.set('tag', filter.tag);
  const s = q.toString();
  return s ? `/?${s}` : '/';
}

/** One check as a small link: colour, a glyph (from the stylesheet) and the status word for screen readers. */
function chip(c: CheckSummary): Html {
  const soft = c.last_result_status !== c.status ? ` (latest result ${c.last_result_status})` : '';
  const title = `${c.status}${soft} since ${utc(c.since).slice(0, 16)} UTC: ${c.message}`;
  return html`<li><a class="c s-${c.status}" href="/vms/${seg(c.vm)}/checks/${seg(c.check)}" title="${title}">${c.check}<span class="sr"> ${c.status}</span></a></li>`;
}

function problem(c: CheckSummary, now: number): Html {
  return html`<li><b>${c.check}</b> ${c.status}${c.last_result_status !== c.status ? html` <span class="muted">(latest result ${c.last_result_status})</span>` : ''} ${when(c.since, now)}: ${c.message}</li>`;
}

function vmRow(v: VmSummary, now: number): Html {
  const problems = v.checks.filter((c) => c.status !== 'HEALTHY' || c.last_result_status !== 'HEALTHY' || c.stale);
  return html`<tr data-vm="${v.vm}" data-status="${v.status}"><th scope="row"><a href="/vms/${seg(v.vm)}">${v.vm}</a></th><td>${pill(v.status)}</td><td>${when(v.since, now)}</td><td><ul class="checks" aria-label="checks of ${v.vm}">${v.checks.map(chip)}</ul>${
    problems.length
      ? html`<ul class="problems">${problems.map((c) =>
          c.stale && c.status === 'HEALTHY' && c.last_result_status === 'HEALTHY' ? html`<li><b>${c.check}</b> no result since ${when(c.last_result_at, now)}</li>` : problem(c, now),
        )}</ul>`
      : ''
  }</td></tr>`;
}

function counts(label: 'VM' | 'check', c: StatusCounts, filter: FleetFilter): Html {
  return html`<ul class="counts" aria-label="${label}s per status">${STATUSES.map((s) => {
    const n = c[s.toLowerCase() as Lowercase<typeof s>];
    const current = filter.status === s;
    return html`<li><a href="${query({ ...filter, ...(current ? { status: undefined } : { status: s }) })}" class="count" data-status="${s}"${current ? html` aria-current="true"` : ''}><span class="pill s-${s}"><span aria-hidden="true">${GLYPH[s]} </span>${s}</span> ${n} ${label}${n === 1 ? '' : 's'}</a></li>`;
  })}</ul>`;
}

export function fleetHead(view: Pick<FleetView, 'filter' | 'tags'>): Html {
  const f = view.filter;
  return html`<h1>Fleet</h1>
<form class="filters" method="get" action="/" role="search" aria-label="Filter the fleet">
<label>Status<select name="status"><option value="">any</option>${STATUSES.map((s) => html`<option value="${s}"${f.status === s ? html` selected` : ''}>${s}</option>`)}</select></label>
<label>VM name or glob<input name="vm" value="${f.vm ?? ''}" placeholder="web-*" maxlength="200"></label>
${view.tags.length ? html`<label>Tag<select name="tag"><option value="">any</option>${view.tags.map((t) => html`<option value="${t}"${f.tag === t ? html` selected` : ''}>${t}</option>`)}</select></label>` : ''}
<button type="submit">Filter</button>${f.status || f.vm || f.tag ? html` <a href="/">Show all</a>` : ''}
</form>`;
}

export function fleetContent(view: FleetView, source: string): Html {
  const total = view.counts.vms.total;
  if (total === 0) {
    return html`<p>No check results in ${source} yet. Start a watch that writes to this store, e.g. <code>clonebox health watch --all</code>; this page updates by itself.</p>`;
  }
  const filtered = view.filter.status || view.filter.vm || view.filter.tag;
  return html`<p>Fleet ${pill(view.overall_status)} · ${total} VM${total === 1 ? '' : 's'}, ${view.counts.checks.total} checks · last result ${view.last_result_at ? when(view.last_result_at, view.now) : 'never'}</p>
${counts('VM', view.counts.vms, view.filter)}${counts('check', view.counts.checks, view.filter)}
${
  view.vms.length
    ? html`<table class="stack fleet"><caption class="sr">VMs${filtered ? ' matching the filter' : ''}, worst first</caption><thead><tr><th scope="col">VM</th><th scope="col">Status</th><th scope="col">Since</th><th scope="col">Checks</th></tr></thead><tbody>${view.vms.map((v) => vmRow(v, view.now))}</tbody></table>`
    : html`<p>No VM matches this filter. <a href="/">Show all</a></p>`
}`;
}
