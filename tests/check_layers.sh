#!/bin/sh
# The layers of docs/design.md, checked: a folder of src/ may include headers of the folders
# before it in this order (and include/sk2/), never of one after it; core/ and the pure parts
# (codec/, ros2/, device/, record/) include no ZeroMQ. Prints each offending include and fails.
set -eu
src="$1/src"
order="core codec ros2 proto record device client discovery server relay gateway"
status=0
rank() {
    i=0
    for layer in $order; do
        [ "$layer" = "$1" ] && { echo $i; return; }
        i=$((i + 1))
    done
    echo 99
}
for layer in $order; do
    mine=$(rank "$layer")
    for file in "$src/$layer"/*.[ch]; do
        for used in $(sed -n 's|^#include "\([a-z_]*\)/.*|\1|p' "$file" | sort -u); do
            [ "$used" = sk2 ] && continue
            if [ "$(rank "$used")" -gt "$mine" ]; then
                echo "layers: ${file#$1/} includes $used/, a layer above $layer/"
                status=1
            fi
        done
    done
done
for layer in core codec ros2 device record; do
    if grep -ln '#include <czmq.h>\|#include <zmq.h>' "$src/$layer"/*.[ch]; then
        echo "layers: $layer/ includes ZeroMQ"
        status=1
    fi
done
exit $status
