#!/bin/sh
# CPU that `sk2 record` uses against a 30 fps mock server with depth and IR (sk2d) and 1080p
# colour (jpeg): three runs of 5 s, each line from /usr/bin/time. Loopback only.
# Usage: sh bench/record_cpu.sh [build dir]
S=${1:-build}/tools/sk2
dir=$(mktemp -d)
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/sk2-bench-bus
for run in 1 2 3; do
  $S serve --mock 1 --no-announce --no-status --endpoint-file "$dir/ep" >/dev/null 2>&1 &
  server=$!
  while [ ! -s "$dir/ep" ]; do sleep 0.05; done
  /usr/bin/time -f "cpu_user %U s cpu_sys %S s wall %e s" \
    $S record "$(cat "$dir/ep")" -o "$dir/bench.sk2r" --seconds 5 --no-status 2>&1 | tail -2
  kill -INT $server
  wait $server
  rm -f "$dir/ep"
done
rm -rf "$dir"
