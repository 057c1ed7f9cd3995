#!/bin/sh
# Installs the Debian packages sk2 needs to build, test and run, if any are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
# Usage: scripts/install-deps.sh [build|test|all]   (default: all)
set -eu

build="cmake make gcc pkg-config libczmq-dev libzmq3-dev libjansson-dev liblz4-dev libturbojpeg0-dev libpng-dev"
# The codec benchmark's references (bench/bench_codecs.c), built with everything else.
bench="libzstd-dev libblosc-dev libcharls-dev"
test="libcmocka-dev libpng-dev clang clang-format libclang-rt-14-dev python3 python3-zmq python3-lz4"
case "${1:-all}" in
build) wanted="$build $bench" ;;
test | all) wanted="$build $bench $test" ;;
*) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=""
for pkg in $wanted; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $pkg" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "sk2 needs these Debian packages:$missing" >&2
    echo "install them as root with:" >&2
    echo "  apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
