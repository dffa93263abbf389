#!/usr/bin/env bash
# Stand-in for the Actions runner's run.sh, for the local demo machine, which cannot
# reach GitHub. It prints and logs its arguments, with the JIT config redacted, and
# exits 0 as if it had run one job.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/print-args.sh"

echo "stand-in run.sh: GitHub is not reachable, so no job runs."
print_args run.sh --jitconfig "$@"
echo "stand-in run.sh: stand-in job finished."
