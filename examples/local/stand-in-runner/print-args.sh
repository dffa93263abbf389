# Sourced by the stand-in config.sh and run.sh: print_args SCRIPT SECRET_FLAG ARGS...
# prints ARGS one per line, shell-quoted, with the value after SECRET_FLAG shown as
# [REDACTED], and appends the same line to stand-in-calls.log in the current directory.
print_args() {
  local script=$1 secret_flag=$2
  shift 2
  local shown=() redact_next=false arg
  for arg in "$@"; do
    if $redact_next; then
      shown+=('[REDACTED]')
      redact_next=false
    else
      shown+=("$(printf '%q' "$arg")")
    fi
    if [[ "$arg" == "$secret_flag" ]]; then
      redact_next=true
    fi
  done
  echo "stand-in $script: arguments, one per line:"
  if ((${#shown[@]} == 0)); then
    echo "  (no arguments)"
  fi
  for arg in "${shown[@]}"; do
    printf '  %s\n' "$arg"
  done
  printf '%s\n' "$script${shown[*]:+ ${shown[*]}}" >>stand-in-calls.log
}
