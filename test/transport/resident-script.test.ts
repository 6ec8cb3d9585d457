/** Which commands the resident loop runs in its own shell, as a file read, or in a subshell (pure functions). */
import { describe, expect, it } from 'vitest';
import { commandLines, runsInPlace } from '../../src/transport/resident-script.js';

describe('resident session: how each command is sent', () => {
  it.each([
    'echo PONG',
    "df -P -k -- '/'",
    'redis-cli -h 127.0.0.1 ping',
    'systemctl is-active nginx',
    'pgrep -x batch-worker',
    "test -f '/etc/a b'",
    '/usr/local/bin/check --level=2 user@host',
  ])('%s runs in place', (command) => expect(runsInPlace(command)).toBe(true));

  it.each([
    'exit 3',
    'cd /tmp',
    'set',
    'export A=1',
    'A=1 env',
    'unset PATH',
    'eval ls',
    'exec ls',
    'if',
    'fi',
    'read x',
    'printf -v __n x',
    'echo $HOME',
    'echo `id`',
    'ls *',
    'ls ~',
    'echo a; echo b',
    'a && b',
    'a | b',
    'echo x > /tmp/f',
    'echo "quoted"',
    "echo 'unbalanced",
    'echo a\necho b',
    '__cbx_kill 1',
    'sleep 1 &',
  ])('%j runs in a subshell', (command) => expect(runsInPlace(command)).toBe(false));

  it('plain reads of one absolute path are file reads; anything more is a command', () => {
    expect(commandLines('cat /proc/meminfo', 'N')).toBe('r 0 /proc/meminfo\n');
    expect(commandLines('head -n 5 /proc/meminfo', 'N')).toBe('r 5 /proc/meminfo\n');
    expect(commandLines('cat /etc/resolv.conf', 'N')).toBe('r 0 /etc/resolv.conf\n');
    expect(commandLines('cat proc/meminfo', 'N')).toBe('i\ncat proc/meminfo\n@N .\n');
    expect(commandLines('cat /a /b', 'N')).toBe('i\ncat /a /b\n@N .\n');
    expect(commandLines('cat /proc/meminfo | head', 'N')).toBe('c\ncat /proc/meminfo | head\n@N .\n');
    expect(commandLines('head -n 0 /x', 'N')).toBe('i\nhead -n 0 /x\n@N .\n');
  });

  it('a command keeps its text exactly, ended by the nonce line', () => {
    expect(commandLines('echo a\n', 'N')).toBe('c\necho a\n@N .\n');
    expect(commandLines('cat <<E\n  x \\\\\nE', 'N')).toBe('c\ncat <<E\n  x \\\\\nE\n@N .\n');
  });
});
