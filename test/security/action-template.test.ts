/**
 * Action placeholders never turn a value into code, whatever quoting the user wrote around them.
 * Each template is run by real shells (dash as /bin/sh, and bash) with hostile values: no file may be
 * created, and where the user quoted the placeholder the command must receive the exact value.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { actionEnv, guestActionCommand, templateCommand } from '../../src/engine/action-template.js';

const HOSTILE = [
  '$(touch${IFS}PWNED)',
  '`touch PWNED`',
  "'; touch PWNED; '",
  '"; touch PWNED; "',
  "$(touch PWNED)'\"`touch PWNED`\"'\\",
  'a  b\n$(touch PWNED)\nEOF\ntouch PWNED',
  '*',
  "-n ${IFS}$'\\x41'$(touch${IFS}PWNED)}",
];

/** Templates and what the command prints for value V (undefined: the user left it unquoted, so only safety is asserted). */
const CASES: { why: string; template: string; expect?: (v: string) => string; bashOnly?: boolean }[] = [
  { why: 'unquoted', template: `printf '%s\\n' {{vm}}`, expect: (v) => `${v}\n` },
  { why: 'double-quoted alone', template: `printf '%s\\n' "{{vm}}"`, expect: (v) => `${v}\n` },
  { why: 'single-quoted alone', template: `printf '%s\\n' '{{vm}}'`, expect: (v) => `${v}\n` },
  { why: 'in a double-quoted sentence (the docs: logger "{{vm}} api is back")', template: `printf '%s\\n' "VM {{vm}} is down"`, expect: (v) => `VM ${v} is down\n` },
  { why: 'in a single-quoted sentence', template: `printf '%s\\n' 'VM {{vm}} is down'`, expect: (v) => `VM ${v} is down\n` },
  { why: 'glued to other words', template: `printf '%s\\n' x{{vm}}y"{{vm}}"'{{vm}}'`, expect: (v) => `x${v}y${v}${v}\n` },
  { why: 'inside $(…) unquoted', template: `printf '%s\\n' "$(printf '%s' {{vm}})"`, expect: (v) => `${v}\n` },
  { why: 'inside $(…) double-quoted', template: `printf '%s\\n' "$(printf '%s' "{{vm}}")"`, expect: (v) => `${v}\n` },
  { why: 'inside $(…) single-quoted', template: `printf '%s\\n' "$(printf '%s' '{{vm}}')"`, expect: (v) => `${v}\n` },
  { why: 'inside nested $( $( ) )', template: `printf '%s\\n' "$(printf '%s' "$(printf '%s' {{vm}})")"`, expect: (v) => `${v}\n` },
  { why: 'inside backquotes', template: "printf '%s\\n' \"`printf '%s' {{vm}}`\"", expect: (v) => `${v}\n` },
  { why: 'inside bare backquotes', template: "x=`printf '%s' {{vm}}`; printf '%s\\n' \"$x\"", expect: (v) => `${v}\n` },
  { why: 'in ${x:-…} inside double quotes', template: `printf '%s\\n' "\${UNSET_VAR:-{{vm}}}"`, expect: (v) => `${v}\n` },
  { why: 'in ${x:-…} unquoted', template: `printf '%s\\n' \${UNSET_VAR:-{{vm}}}` },
  { why: 'unquoted $(…) result', template: `printf '%s\\n' $(printf '%s' '{{vm}}')` },
  { why: 'echo, as the docs write it', template: `echo "VM at {{address}} is down"; echo '{{vm}}'; echo {{vm}}` },
  { why: 'an assignment', template: `v={{vm}}; printf '%s\\n' "$v"`, expect: (v) => `${v}\n` },
  { why: 'after a backslash-escaped quote', template: `printf '%s\\n' "a\\"{{vm}}"`, expect: (v) => `a"${v}\n` },
  { why: 'here-document', template: `cat <<EOF\nVM {{vm}} is down\nEOF`, expect: (v) => `VM ${v} is down\n` },
  { why: 'here-document with tabs stripped', template: `cat <<-EOF\n\tVM {{vm}}\n\tEOF\nprintf '%s\\n' "{{vm}}"`, expect: (v) => `VM ${v}\n${v}\n` },
  { why: 'quoted here-document (expands nothing: the reference stays literal)', template: `cat <<'EOF'\n{{vm}}\nEOF`, expect: () => '${CLONEBOX_VM}\n' },
  { why: 'a comment', template: `printf '%s\\n' ok # {{vm}} "{{vm}}`, expect: () => 'ok\n' },
  { why: 'a subshell and case', template: `(case "{{vm}}" in *) printf '%s\\n' "{{vm}}";; esac)`, expect: (v) => `${v}\n` },
  { why: 'all four placeholders', template: `printf '%s|%s|%s|%s\\n' "{{vm}}" '{{address}}' {{check}} "{{ status }}"`, expect: (v) => `${v}|${v}|${v}|${v}\n` },
  { why: "bash $'…'", template: `printf '%s\\n' $'VM {{vm}}\\tdown'`, expect: (v) => `VM ${v}\tdown\n`, bashOnly: true },
  { why: 'bash here-string', template: `cat <<< "{{vm}}"`, expect: (v) => `${v}\n`, bashOnly: true },
];

const SHELLS = ['/bin/sh', ...(existsSync('/bin/bash') ? ['/bin/bash'] : [])];
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const SEP = '\u0001--\u0001';

/**
 * Run each script in its own subshell of ONE shell (a process start costs 20-500 ms on a busy machine),
 * in an empty directory; what each printed, and which files were left there.
 */
function runAll(shell: string, scripts: string[], env: Record<string, string>): Promise<{ outputs: string[]; files: string[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'clonebox-tpl-'));
  dirs.push(dir);
  const script = scripts.map((s) => `(\n${s}\n)\nprintf '%s' '${SEP}'`).join('\n');
  // A short PATH: a PATH full of shims costs bash a second per start here.
  const options = { cwd: dir, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env }, encoding: 'utf8' as const, timeout: 20_000 };
  return new Promise((resolve) =>
    execFile(shell, ['-c', script], options, (_err, stdout) => resolve({ outputs: stdout.split(SEP).slice(0, scripts.length), files: readdirSync(dir) })),
  );
}

/** The host form: the values in the environment (here as V0…Vn, set per subshell), the command templated. */
function hostScripts(template: string): { scripts: string[]; env: Record<string, string> } {
  const env = Object.fromEntries(HOSTILE.map((v, i) => [`V${i}`, v]));
  const vars = Object.keys(actionEnv({ vm: '' }));
  const scripts = HOSTILE.map((_v, i) => `${vars.map((k) => `${k}=$V${i}`).join('; ')}; export ${vars.join(' ')}\n${templateCommand(template)}`);
  return { scripts, env };
}

describe('templateCommand: the reference fits the quoting it stands in', () => {
  it.each([
    ['echo {{vm}}', 'echo "$CLONEBOX_VM"'],
    ['echo "{{vm}} down"', 'echo "${CLONEBOX_VM} down"'],
    ["echo '{{vm}} down'", `echo ''"$CLONEBOX_VM"' down'`],
    ['echo "$(echo {{address}})"', 'echo "$(echo "$CLONEBOX_ADDRESS")"'],
    ['virsh reboot {{vm}}', 'virsh reboot "$CLONEBOX_VM"'],
    ['echo {{nope}} {{ vm }}', 'echo {{nope}} "$CLONEBOX_VM"'],
  ])('%s', (template, expected) => {
    expect(templateCommand(template)).toBe(expected);
  });

  it('actionEnv carries the values exactly', () => {
    expect(actionEnv({ vm: HOSTILE[0]!, address: '10.0.0.1', check: 'api', status: 'UNHEALTHY' })).toEqual({
      CLONEBOX_VM: HOSTILE[0],
      CLONEBOX_ADDRESS: '10.0.0.1',
      CLONEBOX_CHECK: 'api',
      CLONEBOX_STATUS: 'UNHEALTHY',
    });
  });

  it('never puts a value into the text', () => {
    for (const c of CASES) expect(templateCommand(c.template)).not.toMatch(/PWNED/);
  });
});

describe.each(SHELLS)('host actions under %s: values are data', (shell) => {
  const cases = CASES.filter((c) => !c.bashOnly || shell.endsWith('bash'));
  it.each(cases.map((c) => [c.why, c] as const))('%s', async (_why, c) => {
    const { scripts, env } = hostScripts(c.template);
    const { outputs, files } = await runAll(shell, scripts, env);
    expect(files, 'a value ran as code').toEqual([]);
    if (c.expect) expect(outputs).toEqual(HOSTILE.map(c.expect));
  });
});

describe.each(SHELLS)('guest actions under %s: quoted assignments ahead of the command', (shell) => {
  const cases = CASES.filter((c) => !c.bashOnly || shell.endsWith('bash'));
  it.each(cases.map((c) => [c.why, c] as const))('%s', async (_why, c) => {
    // No CLONEBOX_* in the environment: the script sets them itself, as it must over SSH.
    const { outputs, files } = await runAll(shell, HOSTILE.map((v) => guestActionCommand(c.template, { vm: v, address: v, check: v, status: v })), {});
    expect(files, 'a value ran as code').toEqual([]);
    if (c.expect) expect(outputs).toEqual(HOSTILE.map(c.expect));
  });
});
