#!/usr/bin/env bash
# Stand-in for the Actions runner's config.sh, for the local demo machine, which cannot
# reach GitHub. It prints and logs its arguments, with the token value redacted.
set -euo pipefail

echo "stand-in config.sh: GitHub is not reachable, so no runner registers."
echo "stand-in config.sh: arguments, one per line:"
shown=()
redact_next=false
for arg in "$@"; do
  if $redact_next; then
    shown+=('[REDACTED]')
    redact_next=false
  else
    shown+=("$(printf '%q' "$arg")")
  fi
  if [[ "$arg" == --token ]]; then
    redact_next=true
  fi
done
if ((${#shown[@]} == 0)); then
  echo "  (no arguments)"
fi
for arg in "${shown[@]}"; do
  printf '  %s\n' "$arg"
done
printf '%s\n' "config.sh${shown[*]:+ ${shown[*]}}" >>stand-in-calls.log
