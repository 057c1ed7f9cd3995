#!/bin/sh
# Installs the browser test's npm packages (package-lock.json: playwright-core only, which
# downloads no browser) into DIR/node_modules, unless they are there already for this lock.
# Exit 77 (skip) without npm, except under CI=true, where that is a failure.
# usage: npm-ci.sh SOURCE_DIR DIR
set -eu
src=$1
dir=$2
if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found (apt-get install npm)" >&2
    [ "${CI:-}" = true ] && exit 1
    exit 77
fi
mkdir -p "$dir"
if [ -f "$dir/node_modules/.sk2-lock" ] && cmp -s "$src/package-lock.json" "$dir/node_modules/.sk2-lock"; then
    exit 0
fi
cp "$src/package.json" "$src/package-lock.json" "$dir/"
cd "$dir"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json node_modules/.sk2-lock
