#!/bin/sh
# Installs the Debian packages sk2 needs to build, test and run, if any are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
# Usage: scripts/install-deps.sh [build|test|all]   (default: all)
#
# The discovery tests need avahi-daemon and a D-Bus daemon, but only ever run them inside a
# private network namespace (tests/discovery/with-avahi-netns.sh). Installing those packages
# must therefore not start them on this machine: apt-get runs with a policy-rc.d that forbids
# starting services (see below).
set -eu

# libopenni2-dev and libfreenect-dev bring the camera backends (and, in libopenni2-0 and
# libfreenect0.5, the Dummy/OniFile drivers and fakenect the backend tests run against).
# python3-dev and python3-numpy build the Python binding (python/, docs/python.md); its tests
# use python3-open3d and run examples/python/ (python3-matplotlib, python3-open3d).
# pcl-tools is PCL's command line (pcl_pcd2ply and friends): the point cloud export's test reads
# sk2's PCD and PLY files with it, as open3d does, so two independent readers judge them.
# python3-pil (Pillow) reads the 16-bit PNGs of MCAP's compressedDepth messages in
# tests/mcap/test_mcap_ros2.py, a PNG reader that is not sk2's.
build="cmake make gcc pkg-config libczmq-dev libzmq3-dev libjansson-dev liblz4-dev libturbojpeg0-dev
       libpng-dev zlib1g-dev libavahi-client-dev libopenni2-dev libfreenect-dev libwebsockets-dev
       python3-dev python3-numpy libzstd-dev"
# The codec benchmark's references (bench/bench_codecs.c), built with everything else
# (libzstd-dev, also in build for MCAP's chunk compression).
bench="libblosc-dev libcharls-dev"
test="libcmocka-dev libpng-dev clang clang-format libclang-rt-14-dev python3 python3-zmq python3-lz4
      avahi-daemon dbus-daemon dbus-bin python3-zeroconf iproute2 util-linux
      nodejs chromium chromium-driver stress python3-matplotlib python3-open3d python3-pytest
      python3-setuptools python3-pip
      pcl-tools
      python3-pil"
case "${1:-all}" in
build) wanted="$build $bench" ;;
test | all) wanted="$build $bench $test" ;;
*) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac
# The browser test installs playwright-core with npm (tests/web/npm-ci.sh). Debian's nodejs
# needs its npm package; a nodejs that brings its own npm (NodeSource's) conflicts with it.
if [ "$wanted" != "$build $bench" ] && ! command -v npm >/dev/null 2>&1; then
    wanted="$wanted npm"
fi

# The MCAP test's reference readers (@mcap/core and Foxglove's ROS 2 message decoders, locked
# in tests/mcap/package-lock.json) go into tests/mcap/node_modules, where the test looks; the
# test fails without them rather than skipping. Only for test/all, and only when npm is there.
npm_mcap() {
    [ "$wanted" != "$build $bench" ] || return 0
    dir="$(cd "$(dirname "$0")/.." && pwd)/tests/mcap"
    if [ -f "$dir/node_modules/.sk2-lock" ] && cmp -s "$dir/package-lock.json" "$dir/node_modules/.sk2-lock"; then
        return 0
    fi
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.sk2-lock)
}

# The Foxglove test's reference client (@foxglove/ws-protocol, ws) and ROS 2 decoders, locked in
# tests/foxglove/package-lock.json, into tests/foxglove/node_modules the same way.
npm_foxglove() {
    [ "$wanted" != "$build $bench" ] || return 0
    dir="$(cd "$(dirname "$0")/.." && pwd)/tests/foxglove"
    if [ -f "$dir/node_modules/.sk2-lock" ] && cmp -s "$dir/package-lock.json" "$dir/node_modules/.sk2-lock"; then
        return 0
    fi
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.sk2-lock)
}

missing=""
for pkg in $wanted; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $pkg" ;;
    esac
done
[ -z "$missing" ] && { npm_mcap; npm_foxglove; exit 0; }

if [ "$(id -u)" -ne 0 ]; then
    echo "sk2 needs these Debian packages:$missing" >&2
    echo "install them as root with:" >&2
    echo "  apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive

# Debian's maintainer scripts start a package's service unless /usr/sbin/policy-rc.d exits
# 101 ("action forbidden"). For the time of the install, make sure one does: if there is none,
# put ours in place; if there is one that would let avahi-daemon start, set it aside and put
# it back afterwards. Either way avahi-daemon (and the system D-Bus) never start here.
policy=${SK2_POLICY_RC_D:-/usr/sbin/policy-rc.d}
saved="$policy.sk2-saved"
restore_policy() {
    if [ -n "${placed:-}" ]; then
        rm -f "$policy"
        [ ! -e "$saved" ] || mv -f "$saved" "$policy"
    fi
}
placed=""
rc=0
[ -x "$policy" ] && { "$policy" avahi-daemon start >/dev/null 2>&1 || rc=$?; }
if [ "$rc" -ne 101 ]; then
    trap restore_policy EXIT
    trap 'exit 1' INT TERM
    [ ! -e "$policy" ] || mv -f "$policy" "$saved"
    placed=1
    printf '#!/bin/sh\n# Temporary, from sk2 scripts/install-deps.sh: start no services.\nexit 101\n' \
        >"$policy"
    chmod 755 "$policy"
fi

apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -qq --no-install-recommends $missing >/dev/null
npm_mcap
npm_foxglove
