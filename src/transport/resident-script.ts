/**
 * The guest side of the resident session (resident.ts): one POSIX-sh loop per VM, started once on a long-lived exec
 * channel, that runs the commands it is sent on its stdin. Kept apart so the shell can be read as a whole.
 *
 * Host → guest, one line each (stdin, never a command line: see batch.ts on why the nonce stays off it):
 *   NONCE                      the first line, once: the marks carry it, so output cannot forge them
 *   c / TEXT… / @NONCE .       a command; its text is every line up to the terminator (any text, heredocs included)
 *   r PATH                     a file read without a process (`cat PATH` of the probes: /proc/meminfo, resolv.conf)
 *   g ID                       run the queued commands as one job, in order, numbered ID, ID+1, …
 *   s                          the job stops after the command it is running (USR1, handled between commands)
 *   k                          the job and everything it started are killed now (the session lives on)
 * Guest → host (each mark on its own line, `\n@NONCE …\n`):
 *   b ID                       (stdout) job ID received; its first command starts now
 *   e ID STATUS                (stdout and stderr) command ID ended with STATUS
 *   x ID                       (stdout and stderr) job ID ended before its last command (stopped or killed):
 *                              the commands without an `e` mark never ran (or were killed running)
 *
 * Costs per steady round: no channel, no login shell, no lifeline. One fork for the job (so the loop keeps reading
 * its stdin and notices EOF while a command runs), one per command (its own subshell: `exit`, `cd`, traps stay
 * its own, as on a channel of its own), none for a file read. Text is eval'd by the user's login shell, as a
 * channel's command would be: each command separately, so one command's syntax error is its own exit status 2.
 *
 * Killing: sshd made the loop a process-group leader, and without a terminal dash has no job control, so a job
 * cannot get a group of its own; `__cbx_kill` stops the job, then its descendants level by level (a stopped process
 * cannot fork any more, so none escapes), read from each task's `children` file in /proc (or, on a kernel without
 * it, from the parent pid in every process's `stat`), then kills them all. Processes that left the
 * tree (daemons, reparented to init) are left alone, as a channel's lifeline leaves processes of another session.
 * On EOF (the channel closed, the connection died) the running job is killed the same way and the loop exits.
 *
 * zsh is not POSIX by default (no word splitting): the loop refuses it (exit 124) and the pool keeps per-round
 * channels for that VM; csh and fish cannot parse it and fail the same way.
 */
export const RESIDENT_SCRIPT = `IFS= read -r __n || exit 125
[ -z "\${ZSH_VERSION:-}" ] || exit 124
__cbx_kill() {
  __all=" " __todo=$1
  while [ -n "$__todo" ]; do
    __next=
    for __p in $__todo; do
      case $__all in *" $__p "*) continue ;; esac
      kill -STOP "$__p" 2>/dev/null || continue
      __all="$__all$__p "
      if [ -e "/proc/$__p/task/$__p/children" ]; then
        for __d in /proc/"$__p"/task/*/children; do
          __c=; { read -r __c <"$__d"; } 2>/dev/null; __next="$__next $__c"
        done
      else
        for __d in /proc/[0-9]*; do
          __s=; { read -r __s <"$__d/stat"; } 2>/dev/null || continue
          __s=\${__s##*') '}; __s=\${__s#* }; [ "\${__s%% *}" != "$__p" ] || __next="$__next \${__d#/proc/}"
        done
      fi
    done
    __todo=$__next
  done
  kill -KILL $__all 2>/dev/null
}
__cbx_mark() { printf '\\n@%s %s\\n' "$__n" "$1"; printf '\\n@%s %s\\n' "$__n" "$1" >&2; }
__i=0 __j= __g=0
while IFS= read -r __l; do
  case $__l in
  c)
    __t=
    while IFS= read -r __l; do
      [ "$__l" != "@$__n ." ] || break
      __t="$__t$__l
"
    done
    __l=
    eval "__c$__i=\\$__t; __m$__i=c"; __i=$((__i + 1)) ;;
  'r '*) eval "__c$__i=\\\${__l#r }; __m$__i=r"; __i=$((__i + 1)) ;;
  'g '*)
    [ -z "$__j" ] || wait "$__j"
    __g=\${__l#g }
    printf '\\n@%s b %s\\n' "$__n" "$__g"
    (
      __stop=
      trap '__stop=1' USR1
      __k=0
      while [ "$__k" -lt "$__i" ] && [ -z "$__stop" ]; do
        eval "__t=\\$__c$__k; __y=\\$__m$__k"
        if [ "$__y" = r ]; then
          __o=
          { while IFS= read -r __l || [ -n "$__l" ]; do __o="$__o$__l
"; done; } <"$__t"
          __rc=$?
          printf '%s' "$__o"
        else
          ( unset __n; eval "$__t" ) </dev/null
          __rc=$?
        fi
        __cbx_mark "e $((__g + __k)) $__rc"
        __k=$((__k + 1))
      done
      [ "$__k" -ge "$__i" ] || __cbx_mark "x $__g"
    ) &
    __j=$! __i=0 ;;
  s) [ -z "$__j" ] || kill -USR1 "$__j" 2>/dev/null ;;
  k) if [ -n "$__j" ]; then __cbx_kill "$__j"; wait "$__j"; __j=; __cbx_mark "x $__g"; fi ;;
  esac
done
[ -z "$__j" ] || __cbx_kill "$__j"
`;

/** A command the loop runs as a file read, without a process: `cat` of one absolute path of plain characters. */
const READ_FILE = /^cat (\/[\w.,+@%/-]+)$/;

/** What to send for one command: `r PATH` for a plain file read, else the text between `c` and the terminator. */
export function commandLines(command: string, nonce: string): string {
  const read = READ_FILE.exec(command);
  if (read) return `r ${read[1]}\n`;
  return `c\n${command}${command.endsWith('\n') ? '' : '\n'}@${nonce} .\n`;
}
