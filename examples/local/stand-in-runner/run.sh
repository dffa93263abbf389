#!/usr/bin/env bash
# Stand-in for the Actions runner's run.sh, for the local demo machine, which cannot
# reach GitHub. It prints and logs its arguments, with the JIT config redacted, and
# exits 0 as if it had run one job.
set -euo pipefail

echo "stand-in run.sh: GitHub is not reachable, so no job runs."
echo "stand-in run.sh: arguments, one per line:"
shown=()
redact_next=false
for arg in "$@"; do
  if $redact_next; then
    shown+=('[REDACTED]')
    redact_next=false
  else
    shown+=("$(printf '%q' "$arg")")
  fi
  if [[ "$arg" == --jitconfig ]]; then
    redact_next=true
  fi
done
if ((${#shown[@]} == 0)); then
  echo "  (no arguments)"
fi
for arg in "${shown[@]}"; do
  printf '  %s\n' "$arg"
done
printf '%s\n' "run.sh${shown[*]:+ ${shown[*]}}" >>stand-in-calls.log
echo "stand-in run.sh: stand-in job finished."
