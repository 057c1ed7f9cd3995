#!/bin/sh
# CPU per point cloud of `sk2 export --format ply`: coloured (registration of the nearest colour
# frame) against --no-color, median of 5 runs, on a take of a mock server recorded here.
#   nice -n 10 sh bench/bench_cloud_color.sh build/tools/sk2
# Each run's user + system time is divided by the number of clouds; both modes include reading
# and decoding the depth frames, the coloured one also decodes a 1080p JPEG per cloud.
set -eu
SK2=$(realpath "${1:-build/tools/sk2}")
work=$(mktemp -d /tmp/sk2-bench-cloud-color-XXXXXX)
cd "$work"
"$SK2" serve --mock 1 --fps 10 --no-announce --no-status --bind 127.0.0.1 --endpoint-file ep \
    >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
tries=0
while [ ! -s ep ] && [ $tries -lt 100 ]; do sleep 0.1; tries=$((tries + 1)); done
"$SK2" record "$(cat ep)" -o take.sk2r --frames 60 --streams depth,color --no-status --force \
    >/dev/null
kill $server
"$SK2" export take.sk2r x --format ply -q 2>/dev/null
clouds=$(ls x | grep -c '\.ply$')
rm -rf x
echo "clouds per run: $clouds"
for mode in "" --no-color; do
    for run in 1 2 3 4 5; do
        rm -rf out
        /usr/bin/time -f "%U %S" -o t.txt "$SK2" export take.sk2r out --format ply $mode -q
        awk -v n="$clouds" '{printf "%.1f\n", ($1 + $2) * 1000 / n}' t.txt
    done | sort -n | sed -n 3p | sed "s/^/${mode:-coloured}: median CPU ms per cloud: /"
done
