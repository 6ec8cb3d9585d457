/**
 * The page shell: one stylesheet and one small script, both inline constants whose hashes go into the
 * Content-Security-Policy, so no other script or style can run. The script only makes the page live: it listens to
 * `/events` (server-sent events) and, on a change, fetches the same URL as a fragment and swaps `#content`.
 * Without JavaScript the page is whole; a <noscript> refresh keeps it current.
 */
import { createHash } from 'node:crypto';
import { html, trusted, type Html } from './escape.js';

const CSS = `:root{color-scheme:light;--h:#1a7f37;--d:#8a5300;--u:#c0262d;--k:#59636e;--none:#d8dee4;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;line-height:1.45;color:#1f2328;background:#fff}
body{margin:0}header,main,footer{padding:.5rem 1rem;max-width:76rem;margin:0 auto;box-sizing:border-box}
header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;border-bottom:1px solid #d0d7de}
footer{border-top:1px solid #d0d7de;font-size:.85em}
.brand{font-weight:700;color:inherit;text-decoration:none}a{color:#0550ae}
h1{font-size:1.35rem;margin:.5rem 0;overflow-wrap:anywhere}h2{font-size:1.05rem;margin:1.25rem 0 .4rem}
.pill,.c{display:inline-block;padding:0 .45em;border-radius:.3em;color:#fff;font-weight:600;font-size:.85em;white-space:nowrap}
.s-HEALTHY{background:var(--h)}.s-DEGRADED{background:var(--d)}.s-UNHEALTHY{background:var(--u)}.s-UNKNOWN{background:var(--k)}.s-none{background:var(--none)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.muted{color:#59636e}.live{font-size:.85em}
.counts{display:flex;flex-wrap:wrap;gap:.4rem;list-style:none;padding:0;margin:.5rem 0}
.counts a{display:inline-block;padding:.1rem .5rem;border:1px solid #d0d7de;border-radius:.3rem;text-decoration:none;color:inherit}
.counts a[aria-current]{border-color:#1f2328;font-weight:600}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid #d0d7de}
td.msg{overflow-wrap:anywhere}th a{overflow-wrap:anywhere}
.checks{display:flex;flex-wrap:wrap;gap:.25rem;list-style:none;margin:0;padding:0}
.c{font-weight:500;text-decoration:none}.c.s-HEALTHY::before{content:"✔ " / ""}.c.s-DEGRADED::before{content:"▲ " / ""}.c.s-UNHEALTHY::before{content:"✖ " / ""}.c.s-UNKNOWN::before{content:"? " / ""}.c:focus,.c:hover{outline:2px solid #1f2328;outline-offset:1px}
.problems{margin:.3rem 0 0;padding-left:1.1rem;font-size:.9em;overflow-wrap:anywhere}
.bars{display:flex;gap:1px;height:2rem;margin:.25rem 0}.bars span{flex:1;border-radius:1px;min-width:2px}
.bars.mini{height:1.1rem;min-width:8rem}
.axis{display:flex;justify-content:space-between;font-size:.8em}
.spark{width:100%;height:3.5rem;display:block;border-bottom:1px solid #d0d7de}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}dl.facts dt{font-weight:600}dl.facts dd{margin:0;overflow-wrap:anywhere}
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:.5rem 0}form.filters label{display:flex;flex-direction:column;font-size:.85em}
input,select,button{font:inherit;padding:.15rem .4rem}
@media (max-width:40rem){table.stack thead{position:absolute;left:-9999px}table.stack tr{display:block;border-bottom:1px solid #d0d7de;padding:.35rem 0}table.stack th,table.stack td{display:block;border:0;padding:.1rem .25rem}}`;

const SCRIPT = `(function(){var c=document.getElementById('content'),s=document.getElementById('live');if(!c||!s||!window.EventSource||!window.fetch)return;
var busy=false,again=false;function t(){return new Date().toLocaleTimeString()}
function refresh(){if(busy){again=true;return}busy=true;var u=new URL(location.href);u.searchParams.set('fragment','1');
fetch(u,{credentials:'same-origin',headers:{accept:'text/html'}}).then(function(r){if(!r.ok)throw new Error(String(r.status));return r.text()})
.then(function(h){c.innerHTML=h;s.textContent='live, updated '+t()}).catch(function(){s.textContent='live update failed at '+t()+'; retrying on the next change'})
.then(function(){busy=false;if(again){again=false;refresh()}})}
var es=new EventSource('/events');es.addEventListener('change',refresh);es.onopen=function(){s.textContent='live'};
es.onerror=function(){s.textContent='live updates paused; reconnecting'}})();`;

const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** No script or style runs but these two; nothing is framed, nothing leaves for another origin. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(CSS)}`,
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** A small green-grey mark, so browsers have an icon and ask for nothing that is not there. */
export const FAVICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#59636e"/><path d="M4 8.5l2.5 2.5L12 5" stroke="#fff" stroke-width="2" fill="none"/></svg>';

export interface PageParts {
  title: string;
  /** Above the live part: headings, forms (not replaced by live updates, so typing is never interrupted). */
  head?: Html;
  /** The part live updates replace, and what `?fragment=1` returns. */
  content: Html;
  /** Where the data comes from (the store's location, password hidden). */
  source: string;
  /** Seconds between refreshes without JavaScript. */
  refreshSeconds?: number;
}

export function page(p: PageParts): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${p.title} · clonebox health</title><link rel="icon" href="/favicon.svg" type="image/svg+xml"><style>${trusted(CSS)}</style>
<noscript><meta http-equiv="refresh" content="${p.refreshSeconds ?? 30}"></noscript></head>
<body><header><a class="brand" href="/">clonebox health</a><nav aria-label="API"><a href="/api/v1/fleet">JSON API</a> · <a href="/metrics">metrics</a></nav><span id="live" class="live muted">updated when loaded</span></header>
<main>${p.head ?? ''}<div id="content">${p.content}</div></main>
<footer class="muted">Read-only view of the history store ${p.source}. Statuses after thresholds; times in UTC.</footer>
<script>${trusted(SCRIPT)}</script></body></html>
`;
}
