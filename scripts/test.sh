#!/usr/bin/env bash
# Install what is missing, build tern twice (optimised, and with
# AddressSanitizer + UndefinedBehaviorSanitizer), and run the whole test
# suite: Check unit tests and end-to-end tests against the real ternd with
# real peers (swaks, Python smtplib, Postfix's smtp-source). Ends with
# CTest's summary line; exits non-zero when anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

bash scripts/install-deps.sh --with-peers
# Children of a root ternd run as mail_owner, "tern" by default.
if [ "$(id -u)" = 0 ] && ! id tern >/dev/null 2>&1; then
	useradd --system --user-group --no-create-home --shell /usr/sbin/nologin tern
fi

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTERN_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"

# Sanitizers: any report fails the test that triggered it.
export ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

echo "== sanitizer build: unit and end-to-end tests"
ctest --test-dir build-asan --output-on-failure --timeout 900
echo "== optimised build: unit and end-to-end tests"
ctest --test-dir build --output-on-failure --timeout 900
