#!/bin/sh
# Usage: with-avahi-netns.sh CMD [ARGS...]
#
# Runs CMD with an mDNS network of its own: a fresh network namespace whose only interface is
# loopback (so no packet can leave the machine), a fresh PID namespace (so every process the
# test starts, daemons included, dies with it), and a fresh mount namespace in which a tmpfs
# over /run/avahi-daemon holds a private D-Bus system bus and the state of a private
# avahi-daemon bound to lo. CMD sees DBUS_SYSTEM_BUS_ADDRESS pointing at that bus, and
# SK2_AVAHI_CONF naming the daemon's configuration (for tests that restart it).
#
# Exit status: CMD's. 77 (ctest's SKIP_RETURN_CODE) when this machine cannot make namespaces or
# lacks the daemons, with the reason on stderr -- except when CI=true, where that is a failure
# (1): CI must run these tests, never skip them quietly. Needs root (CAP_SYS_ADMIN).
set -eu

skip() {
    echo "with-avahi-netns: cannot run discovery tests here: $*" >&2
    if [ "${CI:-}" = true ]; then
        echo "with-avahi-netns: CI=true, so this is a failure, not a skip" >&2
        exit 1
    fi
    echo "with-avahi-netns: SKIPPED" >&2
    exit 77
}

if [ "${SK2_NETNS_INSIDE:-}" != 1 ]; then
    [ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
    for tool in unshare ip dbus-daemon dbus-send avahi-daemon timeout; do
        command -v "$tool" >/dev/null 2>&1 ||
            skip "$tool is not installed (scripts/install-deps.sh test installs it)"
    done
    unshare --net --mount --pid --fork --kill-child true 2>/dev/null ||
        skip "no permission to create namespaces (run as root, or in a container that allows unshare)"
    # The tmpfs is mounted over this directory inside the namespace; it must exist to be a
    # mount point. An empty directory is all this leaves behind on the machine.
    mkdir -p /run/avahi-daemon
    script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
    # --kill-child: if unshare dies (timeout, Ctrl-C), the namespace's first process is
    # killed, and with it everything else in the PID namespace.
    exec timeout -k 5 "${SK2_NETNS_TIMEOUT:-600}" env SK2_NETNS_INSIDE=1 \
        unshare --net --mount --pid --fork --kill-child --mount-proc "$script" "$@"
fi

# ---- Inside the namespaces: we are process 1 of the PID namespace. ----

ip link set lo up
ip link set lo multicast on
ip route add 224.0.0.0/4 dev lo # mDNS (224.0.0.251) goes out on lo, the only interface
if ip -o link show | grep -v ': lo:' | grep -q .; then
    echo "with-avahi-netns: refusing to run: an interface other than lo is visible" >&2
    exit 1
fi

mount -t tmpfs -o mode=0755 sk2-avahi /run/avahi-daemon # private pid file, socket, our files
dir=/run/avahi-daemon/sk2
mkdir "$dir"

cat >"$dir/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
CONF

cat >"$dir/avahi-daemon.conf" <<CONF
[server]
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
ratelimit-interval-usec=0
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
[reflector]
enable-reflector=no
CONF

# --fork returns once the bus listens, and --print-pid says who to stop later.
dbus-daemon --config-file="$dir/bus.conf" --fork --print-pid=3 3>"$dir/dbus.pid" \
    2>"$dir/dbus.log"
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/system_bus_socket"
SK2_AVAHI_CONF="$dir/avahi-daemon.conf"
export DBUS_SYSTEM_BUS_ADDRESS SK2_AVAHI_CONF

# -D returns once the daemon has started (it writes /run/avahi-daemon/pid, private here).
avahi-daemon -f "$SK2_AVAHI_CONF" --no-drop-root --no-chroot --no-rlimits -D 2>"$dir/avahi.log" ||
    { cat "$dir/avahi.log" >&2; skip "avahi-daemon would not start"; }

# The daemon answers on D-Bus at once but probes its host name first; wait (10 s at most) for
# AVAHI_SERVER_RUNNING (2) so every test starts from a settled daemon.
tries=0
until dbus-send --system --print-reply --dest=org.freedesktop.Avahi / \
    org.freedesktop.Avahi.Server.GetState 2>/dev/null | grep -q 'int32 2'; do
    tries=$((tries + 1))
    if [ "$tries" -gt 200 ]; then
        cat "$dir/avahi.log" >&2
        echo "with-avahi-netns: avahi-daemon did not reach the running state in 10 s" >&2
        exit 1
    fi
    sleep 0.05
done

set +e
"$@"
rc=$?
# Stop the daemons we started, by the PIDs they wrote; leaving the PID namespace would kill
# them anyway.
kill "$(cat /run/avahi-daemon/pid 2>/dev/null)" "$(cat "$dir/dbus.pid")" 2>/dev/null
exit $rc
