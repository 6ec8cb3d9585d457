# Sourced by fleet.sh and jump.sh (needs NSP, LAB and die): one lab per name prefix.
#
# A second checkout that forgot CLONEBOX_LAB_NS must not take over a running lab's namespaces (its sshd would
# answer with other host keys). The claim in /run/clonebox-labs/$NSP names the owning lab's directory; it lapses
# when that directory is gone or when no process runs in any $NSP-* namespace any more (the owner's session ended:
# /run and the namespaces outlive their processes, e.g. into a CI run on a copy of this machine).
claim_prefix() {
  local claims=/run/clonebox-labs owner=""
  [[ -d $claims ]] || mkdir -p "$claims"
  if [[ -f $claims/$NSP ]]; then read -r owner <"$claims/$NSP" || true; fi
  if [[ -n $owner && $owner != "$LAB" && -d $owner/vms ]] && prefix_in_use; then
    die "the namespaces $NSP-* belong to the running lab at $owner; give this one its own with CLONEBOX_LAB_NS, CLONEBOX_LAB_NET and CLONEBOX_LAB_DIR (see test/lab/README.md), or stop that lab first"
  fi
  [[ $owner == "$LAB" ]] || printf '%s\n' "$LAB" >"$claims/$NSP"
}

# True when some process runs in one of the $NSP-* namespaces. A name left behind without its mount
# (a plain file in /run/netns) has none.
prefix_in_use() {
  local f pids
  for f in /run/netns/"$NSP"-*; do
    [[ -e $f ]] || continue
    pids=$(ip netns pids "${f##*/}" 2>/dev/null) || continue
    [[ -z $pids ]] || return 0
  done
  return 1
}
