#!/usr/bin/env python3
"""Saves one depth frame as a point cloud in PLY with open3d.

usage: python3 export_ply.py [ENDPOINT] [OUTPUT.ply]
"""
import sys

import open3d

import sk2

endpoint = sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:5555"
output = sys.argv[2] if len(sys.argv) > 2 else "cloud.ply"
with sk2.Client(endpoint, streams=["depth"]) as c:
    depth = c.wait_for_frames(timeout_ms=5000).depth
    print(f"device {depth.device_id}, frame {depth.seq}: intrinsics {depth.intrinsics}")
    cloud = depth.to_open3d()                     # the pixels with a reading, in metres
    cloud.estimate_normals()
    if not open3d.io.write_point_cloud(output, cloud):
        sys.exit(f"cannot write {output}")
    print(f"{len(cloud.points)} points written to {output}")
