/**
 * Placeholders in action commands (`{{vm}}`, `{{address}}`, `{{check}}`, `{{status}}`) are filled in
 * so that no quoting the user writes can turn a value into code.
 *
 * The values come from outside the config: a domain name is whatever the person who created the
 * domain typed, an address came from a DHCP lease or from the guest's own agent. Pasted into the
 * command text, even single-quoted, they are code: `logger "{{vm}} is down"` puts a domain named
 * `$(touch${IFS}PWNED)` inside double quotes, where `$(…)` runs. So the values never enter the text.
 * They travel in the environment (CLONEBOX_VM, CLONEBOX_ADDRESS, CLONEBOX_CHECK, CLONEBOX_STATUS)
 * and each placeholder becomes a reference to its variable, written for the quoting it stands in:
 *
 *   unquoted, in $(…) or `…`      {{vm}}  →  "$CLONEBOX_VM"         (one word, no globbing)
 *   inside "…" or a here-document  {{vm}}  →  ${CLONEBOX_VM}
 *   inside '…'                     {{vm}}  →  '"$CLONEBOX_VM"'      (close, reference, reopen)
 *   inside $'…'                    {{vm}}  →  '"$CLONEBOX_VM"$'
 *
 * The shell expands a variable's value once and never parses it again, so whatever the value
 * holds stays data. Reading the quoting wrongly (shell syntax is subtle: `case` patterns, nested
 * quotes in backquotes) can only make the reference print literally, never run the value.
 */
import { shellQuote } from '../util/cap.js';

export interface ActionValues {
  vm: string;
  address?: string | undefined;
  check?: string | undefined;
  status?: string | undefined;
}

export const PLACEHOLDER_VARS = {
  vm: 'CLONEBOX_VM',
  address: 'CLONEBOX_ADDRESS',
  check: 'CLONEBOX_CHECK',
  status: 'CLONEBOX_STATUS',
} as const;
type Placeholder = keyof typeof PLACEHOLDER_VARS;

const PLACEHOLDER = /^\{\{\s*(vm|address|check|status)\s*\}\}/;

/** The quoting the shell is in at a point of the command text. */
type Quoting = 'plain' | 'double' | 'single' | 'ansi' | 'heredoc' | 'comment';

function reference(variable: string, quoting: Quoting): string {
  switch (quoting) {
    case 'plain':
    case 'comment':
      return `"$${variable}"`;
    case 'double':
    case 'heredoc':
      return `\${${variable}}`;
    case 'single':
      return `'"$${variable}"'`;
    case 'ansi':
      return `'"$${variable}"$'`;
  }
}

/** A frame of the quoting stack: what opened it and what closes it. */
interface Frame {
  kind: 'plain' | 'double' | 'single' | 'ansi' | 'backquote' | 'param';
  /** For `plain` frames opened by `$(`: the `)` that closes it, counting nested parentheses. */
  closesAt?: ')';
  depth: number;
}

interface PendingHeredoc {
  delimiter: string;
  stripTabs: boolean;
}

/** Read a here-document delimiter word after `<<` / `<<-` starting at `i`; quoted → no expansion. */
function readDelimiter(text: string, start: number): { word: string; end: number } {
  let i = start;
  while (text[i] === ' ' || text[i] === '\t') i++;
  let word = '';
  while (i < text.length && !/[\s;&|<>()]/.test(text[i]!)) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"') {
      const close = text.indexOf(ch, i + 1);
      const end = close === -1 ? text.length : close;
      word += text.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '\\') {
      word += text[i + 1] ?? '';
      i += 2;
    } else {
      word += ch;
      i++;
    }
  }
  return { word, end: i };
}

/**
 * `command` with each placeholder replaced by a reference to its environment variable, safe in the
 * quoting where it stands. The values themselves are never looked at here.
 */
export function templateCommand(command: string): string {
  const stack: Frame[] = [{ kind: 'plain', depth: 0 }];
  const heredocs: PendingHeredoc[] = [];
  let out = '';
  let i = 0;
  let atWordStart = true;
  const top = () => stack[stack.length - 1]!;
  const quotingOf = (f: Frame): Quoting => (f.kind === 'backquote' || f.kind === 'param' ? 'plain' : f.kind);

  while (i < command.length) {
    const m = PLACEHOLDER.exec(command.slice(i, i + 20));
    if (m) {
      const variable = PLACEHOLDER_VARS[m[1] as Placeholder];
      const f = top();
      const enclosing = stack[stack.length - 2]?.kind;
      if (f.kind === 'backquote' && enclosing === 'double') {
        // In "`…`" a backslash before " is removed before the inner command is parsed.
        out += `\\"$${variable}\\"`;
      } else if (f.kind === 'param' && enclosing === 'double') {
        // The word of ${x:-word} inside "…" is itself double-quoted.
        out += reference(variable, 'double');
      } else {
        out += reference(variable, quotingOf(f));
      }
      i += m[0].length;
      atWordStart = false;
      continue;
    }
    const ch = command[i]!;
    const next = command[i + 1];
    const f = top();

    if (f.kind === 'single') {
      if (ch === "'") stack.pop();
      out += ch;
      i++;
      continue;
    }
    if (f.kind === 'ansi') {
      if (ch === '\\' && next !== undefined) {
        out += ch + next;
        i += 2;
        continue;
      }
      if (ch === "'") stack.pop();
      out += ch;
      i++;
      continue;
    }
    if (ch === '\\' && next !== undefined) {
      out += ch + next;
      i += 2;
      atWordStart = false;
      continue;
    }
    if (f.kind === 'double') {
      if (ch === '"') stack.pop();
      else if (ch === '`') stack.push({ kind: 'backquote', depth: 0 });
      else if (ch === '$' && next === '(') {
        stack.push({ kind: 'plain', closesAt: ')', depth: 0 });
        out += '$(';
        i += 2;
        atWordStart = true;
        continue;
      } else if (ch === '$' && next === '{') {
        stack.push({ kind: 'param', depth: 0 });
        out += '${';
        i += 2;
        continue;
      }
      out += ch;
      i++;
      continue;
    }

    // plain, backquote or param: command text.
    if (ch === '#' && atWordStart && f.kind !== 'param') {
      // A comment runs to the end of the line; placeholders in it are harmless but replaced too.
      const nl = command.indexOf('\n', i);
      const end = nl === -1 ? command.length : nl;
      out += templateComment(command.slice(i, end));
      i = end;
      continue;
    }
    if (ch === "'") {
      stack.push({ kind: 'single', depth: 0 });
    } else if (ch === '$' && next === "'") {
      stack.push({ kind: 'ansi', depth: 0 });
      out += "$'";
      i += 2;
      atWordStart = false;
      continue;
    } else if (ch === '"') {
      stack.push({ kind: 'double', depth: 0 });
    } else if (ch === '`') {
      if (f.kind === 'backquote') stack.pop();
      else stack.push({ kind: 'backquote', depth: 0 });
    } else if (ch === '$' && next === '(') {
      stack.push({ kind: 'plain', closesAt: ')', depth: 0 });
      out += '$(';
      i += 2;
      atWordStart = true;
      continue;
    } else if (ch === '$' && next === '{') {
      stack.push({ kind: 'param', depth: 0 });
      out += '${';
      i += 2;
      atWordStart = false;
      continue;
    } else if (ch === '}' && f.kind === 'param') {
      stack.pop();
    } else if (ch === '(') {
      f.depth++;
    } else if (ch === ')') {
      if (f.depth > 0) f.depth--;
      else if (f.closesAt === ')' && stack.length > 1) stack.pop();
    } else if (ch === '<' && next === '<' && command[i + 2] === '<') {
      // A here-string (bash): its word is ordinary command text.
      out += '<<<';
      i += 3;
      atWordStart = true;
      continue;
    } else if (ch === '<' && next === '<') {
      const stripTabs = command[i + 2] === '-';
      const start = i + (stripTabs ? 3 : 2);
      const { word, end } = readDelimiter(command, start);
      if (word) heredocs.push({ delimiter: word, stripTabs });
      out += command.slice(i, end);
      i = end;
      atWordStart = false;
      continue;
    } else if (ch === '\n' && heredocs.length > 0) {
      // The here-documents begin on the next line, one after the other.
      out += ch;
      i++;
      for (const h of heredocs.splice(0)) {
        const { text, end } = heredocBody(command, i, h);
        out += text;
        i = end;
      }
      atWordStart = true;
      continue;
    }
    out += ch;
    i++;
    atWordStart = /[\s;&|()]/.test(ch);
  }
  return out;
}

function templateComment(text: string): string {
  return text.replace(/\{\{\s*(vm|address|check|status)\s*\}\}/g, (_all, name: Placeholder) => reference(PLACEHOLDER_VARS[name], 'comment'));
}

/**
 * A here-document's body from `start` to (and with) its delimiter line. Its text is expanded like
 * "…" without the quotes being special, so ${VAR} is the reference. A quoted delimiter expands
 * nothing: the reference then stays literal text, which is still never the value.
 */
function heredocBody(text: string, start: number, h: PendingHeredoc): { text: string; end: number } {
  let i = start;
  let body = '';
  while (i < text.length) {
    const nl = text.indexOf('\n', i);
    const lineEnd = nl === -1 ? text.length : nl;
    const line = text.slice(i, lineEnd);
    const next = nl === -1 ? text.length : nl + 1;
    if ((h.stripTabs ? line.replace(/^\t+/, '') : line) === h.delimiter) {
      body += text.slice(i, next);
      return { text: body, end: next };
    }
    body += line.replace(/\{\{\s*(vm|address|check|status)\s*\}\}/g, (_all, name: Placeholder) => reference(PLACEHOLDER_VARS[name], 'heredoc'));
    body += text.slice(lineEnd, next);
    i = next;
  }
  return { text: body, end: i };
}

/** The environment an action runs with: the values, exactly as they are. */
export function actionEnv(values: ActionValues): Record<string, string> {
  return {
    CLONEBOX_VM: noNul(values.vm),
    CLONEBOX_ADDRESS: noNul(values.address ?? ''),
    CLONEBOX_CHECK: noNul(values.check ?? ''),
    CLONEBOX_STATUS: noNul(values.status ?? ''),
  };
}

/** A NUL cannot be passed in an environment or an SSH command; none of these values can hold one legitimately. */
function noNul(s: string): string {
  return s.replaceAll('\0', '');
}

/**
 * For the guest, where the command goes to sshd as text and the environment cannot be set
 * (sshd accepts only the variables its AcceptEnv lists): shell-quoted assignments ahead of the
 * command, then the templated command. Single quotes hold any byte but `'`, which is written `'\''`.
 */
export function guestActionCommand(command: string, values: ActionValues): string {
  const env = actionEnv(values);
  const assignments = Object.entries(env)
    .map(([k, v]) => `${k}=${shellQuote(v)}`)
    .join(' ');
  return `${assignments}; export ${Object.keys(env).join(' ')}\n${templateCommand(command)}`;
}
