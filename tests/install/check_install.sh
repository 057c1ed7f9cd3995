#!/bin/sh
# An installation as a user makes it: `cmake --install` into a fresh prefix (not the one the
# build was configured with), then the installed `sk2` run without LD_LIBRARY_PATH, and
# examples/print_depth.c built twice, once with pkg-config and once with find_package(sk2),
# each receiving frames from the installed `sk2 serve` on 127.0.0.1.
#
# Usage: check_install.sh BUILD_DIR SOURCE_DIR CMAKE CC
set -eu
build=$1 source=$2 cmake=$3 cc=$4
work=$(mktemp -d "${TMPDIR:-/tmp}/sk2-install.XXXXXX")
prefix="$work/elsewhere"
server=
cleanup() {
    if [ -n "$server" ]; then
        kill -INT "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
    echo "FAIL $*"
    exit 1
}
unset LD_LIBRARY_PATH
# No mDNS: announcing fails at once instead of reaching the machine's daemon.
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/sk2-install-test-bus

"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" || {
    cat "$work/install.log"
    fail "cmake --install"
}

"$prefix/bin/sk2" --version >"$work/version" 2>&1 || {
    cat "$work/version"
    fail "the installed sk2 does not run without LD_LIBRARY_PATH"
}
grep -q "protocol 1" "$work/version" || fail "sk2 --version: $(cat "$work/version")"
echo "PASS installed sk2 --version runs without LD_LIBRARY_PATH"

pc=$(find "$prefix" -name sk2.pc | head -n 1)
[ -n "$pc" ] || fail "no sk2.pc installed"
export PKG_CONFIG_PATH="$(dirname "$pc")"
libdir=$(pkg-config --variable=libdir sk2)
[ -e "$libdir/libsk2.so" ] || fail "pkg-config's libdir $libdir has no libsk2.so"
# shellcheck disable=SC2046
"$cc" -o "$work/print_depth_pc" "$source/examples/print_depth.c" \
    $(pkg-config --cflags --libs sk2) -Wl,-rpath,"$libdir" || fail "build with pkg-config"
echo "PASS print_depth builds with pkg-config --cflags --libs sk2"

"$cmake" -S "$source/tests/install/consumer" -B "$work/consumer" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DEXAMPLE_SOURCE="$source/examples/print_depth.c" >"$work/consumer.log" 2>&1 &&
    "$cmake" --build "$work/consumer" >>"$work/consumer.log" 2>&1 || {
    cat "$work/consumer.log"
    fail "build with find_package(sk2)"
}
echo "PASS print_depth builds with find_package(sk2)"

"$prefix/bin/sk2" serve --mock 1 --bind 127.0.0.1 --no-announce --no-status \
    --endpoint-file "$work/endpoint" >"$work/serve.log" 2>&1 &
server=$!
tries=0
while [ ! -s "$work/endpoint" ]; do
    tries=$((tries + 1))
    [ $tries -le 200 ] || fail "the installed sk2 serve wrote no endpoint in 20 s"
    kill -0 "$server" 2>/dev/null || fail "sk2 serve exited: $(cat "$work/serve.log")"
    sleep 0.1
done
endpoint=$(cat "$work/endpoint")
for program in "$work/print_depth_pc" "$work/consumer/print_depth"; do
    out=$(timeout 60 "$program" "$endpoint") || fail "$program $endpoint exited $?"
    lines=$(printf '%s\n' "$out" | grep -c " mm at the centre" || true)
    [ "$lines" -eq 10 ] || fail "$program printed $lines frames, not 10: $out"
    echo "PASS $(basename "$(dirname "$program")")/$(basename "$program") receives 10 frames"
done
