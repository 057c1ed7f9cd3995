#!/bin/sh
# Runs the test suite several times in a row while `stress` keeps every core busy, to show that
# no test depends on an idle machine (tests assert on counts and order with generous deadlines,
# never on a measured rate). Bounded: stress stops by itself after --timeout, and is ended by
# PID when the runs are done.
# Usage: scripts/test-under-load.sh BUILD_DIR [RUNS]   (default RUNS 3)
set -eu
build=${1:?usage: $0 BUILD_DIR [RUNS]}
runs=${2:-3}
cores=$(nproc 2>/dev/null || echo 2)
command -v stress >/dev/null 2>&1 || { echo "test-under-load: needs stress (apt-get install stress)" >&2; exit 1; }
# One CPU hog per core, for at most an hour, whatever happens to this script.
stress --cpu "$cores" --timeout 3600 >/dev/null 2>&1 &
hog=$!
trap 'kill "$hog" 2>/dev/null || true; wait "$hog" 2>/dev/null || true' EXIT INT TERM
passed=0
failed=0
i=1
while [ "$i" -le "$runs" ]; do
    echo "== run $i of $runs under load ($cores CPU hogs): $(uptime | sed 's/.*load/load/')"
    if (cd "$build" && ctest --output-on-failure -j "$cores" -LE fuzz); then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
    i=$((i + 1))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
