# SPDX-License-Identifier: Apache-2.0
# Shared by scripts/*: root check and paths. Sourced, not run.
REDTAP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REDTAP_ROOT

# Re-runs the calling script as root (through sudo when it exists), or explains.
redtap_require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      echo "$(basename "$0"): needs root (apt, BPF): re-running with sudo" >&2
      exec sudo -E "$0" "$@"
    fi
    echo "$(basename "$0"): must run as root (it installs Debian packages and loads BPF programs); no sudo here: run it as root" >&2
    exit 1
  fi
}
