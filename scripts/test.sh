#!/usr/bin/env bash
# The whole test suite on a fresh machine. Some tests start their own Redis
# and PostgreSQL servers (on unix sockets under the build tree, stopped when
# done): this installs those programs from Debian's packages when they are
# missing, and Python's cryptography for a cross-check, then runs
# `cargo test --workspace` (extra arguments are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "== installing ${need[*]} (Debian packages) for the tests"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Independent implementations the cross-checks run, from PyPI when missing:
# Python's cryptography verifies our Privacy Pass tokens; cwt (with cbor2)
# verifies our signed mappings and signs one ours must accept.
for module in cryptography cwt cbor2; do
  if ! python3 -c "import $module" >/dev/null 2>&1; then
    echo "== installing Python's $module (PyPI) for the cross-checks"
    python3 -m pip install --quiet "$module" ||
      python3 -m pip install --quiet --break-system-packages "$module"
  fi
done

exec cargo test --workspace "$@"
