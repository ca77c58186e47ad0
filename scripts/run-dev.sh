#!/usr/bin/env bash
# Install what is missing, build, and run ternd in the foreground on its
# development defaults (spool in ./var/spool, SMTP on 127.0.0.1:2525,
# submission on 127.0.0.1:2587, logs on stderr). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
exec build/bin/ternd -f "$@"
