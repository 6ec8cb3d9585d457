/**
 * The guest side of the resident session (resident.ts): one POSIX-sh loop per VM, started once on a long-lived exec
 * channel, that runs the commands it is sent on its stdin. Kept apart so the shell can be read as a whole.
 *
 * Host → guest, one line each (stdin, never a command line: see batch.ts on why the nonce stays off it):
 *   NONCE                      the first line, once: the marks carry it, so output cannot forge them
 *   p PID                      the runner's pid (from its `h` mark), so the reader can signal it
 *   c / TEXT… / @NONCE .       a command in its own subshell; its text is every line up to the terminator (any
 *                              text, heredocs included)
 *   i / TEXT… / @NONCE .       a simple command (runsInPlace) run in the runner's shell: no subshell fork
 *   r N PATH                   a file read without a process, N lines or all (0): `cat`/`head -n` of the probes
 *   g ID                       run the queued commands as one job, in order, numbered ID, ID+1, …
 *   s                          the job stops after the command it is running (USR1, handled between commands)
 *   k                          the command running is killed with everything it started; the job stops
 * Guest → host (each mark on its own line, `\n@NONCE …\n`):
 *   h PID                      (stdout) the runner is up
 *   b ID                       (stdout) job ID received; its first command starts now
 *   e ID STATUS                (stdout and stderr) command ID ended with STATUS
 *   x ID                       (stdout and stderr) job ID ended before its last command (stopped or killed):
 *                              the commands without an `e` mark never ran (or were killed running)
 *
 * Two halves, forked once per session as a pipeline: the reader reads the channel's stdin (so it notices EOF and
 * kill requests while a command runs) and forwards the jobs to the runner, which runs them. Costs per steady round:
 * no channel, no login shell, no lifeline, no fork of our own for a simple command (the program's vfork+exec only)
 * or a file read, one fork for any other command (its own subshell: `exit`, `cd`, traps stay its own, as on a
 * channel of its own). Forks are what cost on these machines (2–3 ms each, bench/README.md). Text is eval'd by the
 * user's login shell, as a channel's command would be: each command separately, so one command's syntax error is
 * its own exit status 2.
 *
 * Killing: sshd made the loop a process-group leader, and without a terminal dash has no job control, so a command
 * cannot get a group of its own; on `k` the reader stops the runner, then `__cbx_kill` stops the runner's children
 * and their descendants level by level (a stopped process
 * cannot fork any more, so none escapes), read from each task's `children` file in /proc (or, on a kernel without
 * it, from the parent pid in every process's `stat`), then kills them all. Processes that left the
 * tree (daemons, reparented to init) are left alone, as a channel's lifeline leaves processes of another session.
 * On EOF (the channel closed, the connection died) the reader kills the runner the same way, and the loop ends.
 * The runner takes USR1 (stop after this command) only while a job runs: at rest it ignores it, so a late one
 * cannot interrupt its `read` of the next job.
 *
 * zsh is not POSIX by default (no word splitting): the loop refuses it (exit 124) and the pool keeps per-round
 * channels for that VM; csh and fish cannot parse it and fail the same way.
 */
export const RESIDENT_SCRIPT = `IFS= read -r __n || exit 125
[ -z "\${ZSH_VERSION:-}" ] || exit 124
__cbx_children() {
  __kids=
  if [ -e "/proc/$1/task/$1/children" ]; then
    for __d in /proc/"$1"/task/*/children; do
      __c=; { read -r __c <"$__d"; } 2>/dev/null; __kids="$__kids $__c"
    done
  else
    for __d in /proc/[0-9]*; do
      __s=; { read -r __s <"$__d/stat"; } 2>/dev/null || continue
      __s=\${__s##*') '}; __s=\${__s#* }; [ "\${__s%% *}" != "$1" ] || __kids="$__kids \${__d#/proc/}"
    done
  fi
}
__cbx_kill() {
  __all=" " __todo=$1
  while [ -n "$__todo" ]; do
    __next=
    for __p in $__todo; do
      case $__all in *" $__p "*) continue ;; esac
      kill -STOP "$__p" 2>/dev/null || continue
      __all="$__all$__p "
      __cbx_children "$__p"; __next="$__next $__kids"
    done
    __todo=$__next
  done
  kill -KILL $__all 2>/dev/null
}
{
  __r= __txt=
  while IFS= read -r __l; do
    if [ -n "$__txt" ]; then
      [ "$__l" != "@$__n ." ] || __txt=
      printf '%s\\n' "$__l"
      continue
    fi
    case $__l in
    c | i) __txt=1; printf '%s\\n' "$__l" ;;
    'p '*) __r=\${__l#p } ;;
    s) [ -z "$__r" ] || kill -USR1 "$__r" ;;
    k)
      if [ -n "$__r" ]; then
        kill -USR1 "$__r"; kill -STOP "$__r"
        __cbx_children "$__r"; __cbx_kill "$__kids"
        kill -CONT "$__r"
      fi ;;
    *) printf '%s\\n' "$__l" ;;
    esac
  done
  [ -z "$__r" ] || __cbx_kill "$__r"
} 2>/dev/null | {
  trap '' USR1
  __me=; { read -r __me __x </proc/self/stat; } 2>/dev/null || __me=$(exec sh -c 'echo $PPID')
  printf '\\n@%s h %s\\n' "$__n" "$__me"
  __i=0
  while IFS= read -r __l; do
    case $__l in
    c | i)
      __y=$__l __t=
      while IFS= read -r __l; do
        [ "$__l" != "@$__n ." ] || break
        __t="$__t$__l
"
      done
      __l=
      eval "__c$__i=\\$__t; __m$__i=\\$__y"; __i=$((__i + 1)) ;;
    'r '*)
      __l=\${__l#r }
      eval "__c$__i=\\\${__l#* }; __m$__i=\\\${__l%% *}"; __i=$((__i + 1)) ;;
    'g '*)
      __g=\${__l#g } __k=0 __stop=
      printf '\\n@%s b %s\\n' "$__n" "$__g"
      trap '__stop=1' USR1
      while [ "$__k" -lt "$__i" ] && [ -z "$__stop" ]; do
        eval "__t=\\$__c$__k; __y=\\$__m$__k"
        if [ "$__y" = c ]; then
          ( unset __n; eval "$__t" ) </dev/null
          __rc=$?
        elif [ "$__y" = i ]; then
          eval "$__t" </dev/null
          __rc=$?
        else
          __o= __x=0
          { while IFS= read -r __l || [ -n "$__l" ]; do
            __o="$__o$__l
"
            __x=$((__x + 1)); [ "$__x" != "$__y" ] || break
          done; } <"$__t"
          __rc=$?
          printf '%s' "$__o"
        fi
        printf '\\n@%s e %s %s\\n' "$__n" $((__g + __k)) "$__rc"
        printf '\\n@%s e %s %s\\n' "$__n" $((__g + __k)) "$__rc" >&2
        __k=$((__k + 1))
      done
      trap '' USR1
      if [ "$__k" -lt "$__i" ]; then
        printf '\\n@%s x %s\\n' "$__n" "$__g"; printf '\\n@%s x %s\\n' "$__n" "$__g" >&2
      fi
      __i=0 __l= ;;
    esac
  done
}
`;

/** Commands the loop runs as a file read, without a process: `cat PATH` and `head -n N PATH` of one absolute path of plain characters. */
const READ_FILE = /^(?:cat|head -n ([1-9][0-9]{0,5})) (\/[\w.,+@%/-]+)$/;

/**
 * One simple command of plain words (`df -P -k -- '/'`, `redis-cli ping`, `systemctl is-active nginx`): no
 * expansion (`$`, backquotes, globs, `~`), no redirection, no operator, no assignment, so running it in the loop's
 * own shell is the same as in a subshell, minus the fork (the program is vfork+exec'd, a builtin runs in place).
 */
const SIMPLE = /^[A-Za-z0-9_./+-]+(?: (?:[A-Za-z0-9_./:=,@%+-]+|'[^'\n]*'))*$/;
/**
 * First words that would change the loop's own shell (special and state-changing builtins of sh, bash and ksh),
 * print its variables, or be a reserved word (a syntax error would end the loop's shell, not just the command).
 */
const IN_PLACE_REFUSED = new Set(
  ('. : [[ alias autoload bg bind break builtin caller case cd command compgen complete compopt continue coproc declare ' +
    'dirs disown do done elif else enable esac eval exec exit export false fc fg fi for function functions getopts hash ' +
    'history if in integer jobs let local logout mapfile nameref popd pushd read readarray readonly return select set ' +
    'shift shopt source suspend then time times trap type typeset ulimit umask unalias unset until wait while').split(' '),
);

/** Whether `command` runs in the loop's shell without a subshell (see SIMPLE); nothing of ours (`__…`) is named. */
export function runsInPlace(command: string): boolean {
  if (!SIMPLE.test(command) || /(?:^| )'?__/.test(command)) return false;
  const first = command.split(' ', 1)[0]!;
  return !IN_PLACE_REFUSED.has(first) && !first.includes('=');
}

/** What commandLines decided for a command: the `r` line itself, or `i` / `c`. */
const kinds = new Map<string, string>();

/**
 * What to send for one command: `r N PATH` for a plain file read (N lines, 0: all), `i` for a simple command run in
 * place, `c` for anything else (its own subshell); the text follows `c`/`i` up to the terminator.
 */
export function commandLines(command: string, nonce: string): string {
  let how = kinds.get(command);
  if (how === undefined) {
    const read = READ_FILE.exec(command);
    how = read ? `r ${read[1] ?? 0} ${read[2]}\n` : runsInPlace(command) ? 'i' : 'c';
    // The same few commands come back every round (the config's); a bound keeps odd callers from growing it.
    if (kinds.size >= 1024) kinds.clear();
    kinds.set(command, how);
  }
  if (how.length > 1) return how;
  return `${how}\n${command}${command.endsWith('\n') ? '' : '\n'}@${nonce} .\n`;
}

