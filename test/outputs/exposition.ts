/**
 * A strict reader of the Prometheus text exposition format 0.0.4 as node_exporter's textfile collector
 * accepts it (https://prometheus.io/docs/instrumenting/exposition_formats/): it throws on the first
 * line that the spec does not allow, rather than guessing. promtool, where installed, checks the same
 * files independently (prometheus.test.ts).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, where: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** Parse `{a="x",b="y"}` starting at `i` (the `{`); returns labels and the index after `}`. */
function parseLabels(line: string, start: number, where: string): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  while (line[i] !== '}') {
    const eq = line.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without =`);
    const name = line.slice(i, eq);
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`${where}: bad label name ${JSON.stringify(name)}`);
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    if (line[eq + 1] !== '"') throw new Error(`${where}: label value of ${name} not quoted`);
    let value = '';
    let j = eq + 2;
    for (;;) {
      const ch = line[j];
      if (ch === undefined) throw new Error(`${where}: unterminated label value of ${name}`);
      if (ch === '"') break;
      if (ch === '\\') {
        const next = line[j + 1];
        if (next === '\\') value += '\\';
        else if (next === '"') value += '"';
        else if (next === 'n') value += '\n';
        else throw new Error(`${where}: bad escape \\${next ?? ''} in label ${name}`);
        j += 2;
        continue;
      }
      value += ch;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`${where}: expected , or } after label ${name}`);
  }
  return { labels, end: i + 1 };
}

export function parseExposition(text: string): Exposition {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the last line does not end with a line feed');
  const out: Exposition = { help: new Map(), type: new Map(), samples: [] };
  const finished = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  const enter = (name: string, where: string) => {
    if (current === name) return;
    if (finished.has(name)) throw new Error(`${where}: ${name} appears again after other metrics (families must be contiguous)`);
    if (current) finished.add(current);
    current = name;
  };
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // any other comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
      enter(name, where);
      if (kind === 'HELP') {
        if (out.help.has(name)) throw new Error(`${where}: second HELP for ${name}`);
        if (/\\(?![\\n])/.test(rest)) throw new Error(`${where}: bad escape in HELP`);
        out.help.set(name, rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\'));
      } else {
        if (out.type.has(name)) throw new Error(`${where}: second TYPE for ${name}`);
        if (out.samples.some((s) => s.name === name)) throw new Error(`${where}: TYPE of ${name} after its samples`);
        if (!TYPES.has(rest)) throw new Error(`${where}: bad type ${rest}`);
        out.type.set(name, rest);
      }
      return;
    }
    const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!nameMatch) throw new Error(`${where}: no metric name`);
    const name = nameMatch[0];
    enter(name, where);
    let i = name.length;
    let labels: Record<string, string> = {};
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i, where));
    if (line[i] !== ' ') throw new Error(`${where}: expected a space before the value`);
    const fields = line.slice(i + 1).split(' ');
    if (fields.length !== 1) throw new Error(`${where}: a timestamp or extra field (the textfile collector refuses timestamps)`);
    const value = parseValue(fields[0]!, where);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (series.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    series.add(key);
    out.samples.push({ name, labels, value });
  });
  return out;
}
