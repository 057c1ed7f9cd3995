#!/bin/sh
# Usage: check_install.sh BUILD_DIR CMAKE PYTHON
#
# Installs the build into a fresh prefix and imports sk2 from there as a user would after
# `cmake --install`: the package must come from the prefix's dist-packages, load the prefix's
# libsk2 (through its RPATH, without LD_LIBRARY_PATH) and stream from a server.
set -eu
build=$1 cmake=$2 python=$3
prefix=$(mktemp -d /tmp/sk2-pyinstall-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
"$cmake" --install "$build" --prefix "$prefix" >/dev/null
site=$(find "$prefix" -path '*dist-packages/sk2/__init__.py' | head -n 1)
[ -n "$site" ] || { echo "FAIL: no sk2 package under $prefix"; exit 1; }
site=$(dirname "$(dirname "$site")")
echo "installed into $site"
ls "$site/sk2"
src=$(cd "$(dirname "$0")/../../python" && pwd)
cd "$prefix"
env -u LD_LIBRARY_PATH PYTHONPATH="$site" "$python" - "$prefix" <<'PY'
import sys
import sk2
prefix = sys.argv[1]
assert sk2.__file__.startswith(prefix), sk2.__file__
maps = open("/proc/self/maps").read()
libs = {line.split()[-1] for line in maps.splitlines() if "libsk2.so" in line}
assert libs and all(l.startswith(prefix) for l in libs), libs
with sk2.Server(mock=1) as srv, sk2.Client(srv.endpoint) as c:
    fs = c.wait_for_frames(timeout_ms=10000)
    assert fs.depth.asarray().shape == (424, 512)
print("ok: sk2", sk2.__version__, "from", sk2.__file__, "with", sorted(libs))
PY

# pip against the installed libsk2 (python/setup.py finds it with pkg-config), where Debian's
# python3-pip is installed. No PyPI here: --no-build-isolation uses Debian's setuptools.
if "$python" -m pip --version >/dev/null 2>&1; then
    # From a fresh copy of the sources: setuptools builds in the source folder (build/) and
    # would reuse a module linked for the prefix of an earlier run.
    mkdir "$prefix/python-src"
    cp -r "$src/setup.py" "$src/sk2" "$src/src" "$prefix/python-src/"
    PKG_CONFIG_PATH="$prefix/lib/pkgconfig" "$python" -m pip install -q --no-build-isolation \
        --no-index --target "$prefix/pip" "$prefix/python-src" 2>&1 | grep -v WARNING || true
    env -u LD_LIBRARY_PATH PYTHONPATH="$prefix/pip" "$python" -c "
import sk2
assert '/pip/' in sk2.__file__, sk2.__file__
with sk2.Server(mock=1) as srv, sk2.Client(srv.endpoint) as c:
    assert c.wait_for_frames(timeout_ms=10000).depth.asarray().shape == (424, 512)
print('ok: pip-built sk2 from', sk2.__file__)"
else
    echo "skip: pip is not installed (Debian: python3-pip); the CMake install was checked"
fi
