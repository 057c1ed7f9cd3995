"""Builds the sk2 Python package against an installed libsk2 (found with pkg-config):

    pip install ./python --break-system-packages      # Debian's pip refuses without it
    PKG_CONFIG_PATH=/opt/sk2/lib/pkgconfig pip install ./python --break-system-packages

The CMake build (python/CMakeLists.txt) builds the same module from the source tree; this is
for a libsk2 installed on its own (docs/python.md).
"""
import os
import shlex
import subprocess

import numpy
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args, "sk2"], check=True, capture_output=True,
                             text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit("sk2: pkg-config cannot find libsk2 (install sk2 first, or set "
                         f"PKG_CONFIG_PATH to its lib/pkgconfig): {e}")
    return shlex.split(out)


cflags = pkg_config("--cflags")
libs = pkg_config("--libs")
libdirs = [f[2:] for f in libs if f.startswith("-L")]

setup(
    name="sk2",
    version=pkg_config("--modversion")[0],
    description="Depth cameras streamed over the network (streamkinect2 compatible), as numpy",
    packages=["sk2"],
    package_dir={"sk2": os.path.join(HERE, "sk2")},
    package_data={"sk2": ["__init__.pyi", "py.typed"]},
    ext_modules=[Extension(
        "sk2._sk2",
        sources=sorted(os.path.join("src", f) for f in os.listdir(os.path.join(HERE, "src"))
                       if f.endswith(".c")),
        include_dirs=[f[2:] for f in cflags if f.startswith("-I")] + [numpy.get_include()],
        library_dirs=libdirs,
        libraries=[f[2:] for f in libs if f.startswith("-l")],
        runtime_library_dirs=libdirs,
        extra_compile_args=["-std=c11"],
    )],
    python_requires=">=3.9",
)
