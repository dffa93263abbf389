#!/usr/bin/env bash
# Stand-in for the Actions runner's config.sh, for the local demo machine, which cannot
# reach GitHub. It prints and logs its arguments, with the token value redacted.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/print-args.sh"

echo "stand-in config.sh: GitHub is not reachable, so no runner registers."
print_args config.sh --token "$@"
