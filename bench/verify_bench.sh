#!/bin/sh
# verify_bench.sh - (a) in-process verify cost at N keys and (e) verify throughput while a
# writer rotates keys. Builds the release core first.  Usage: bench/verify_bench.sh [N] [SECONDS]
# The measuring thread is pinned to CPU 1 and, for (e), the writer thread to CPU 0.
set -eu
cd "$(dirname "$0")/.."
make -s build/libkwcore.a
mkdir -p build/bench
cc -std=c17 -D_GNU_SOURCE -O2 -g -pthread -Isrc -Iinclude -o build/bench/verify_bench \
    bench/verify_bench.c build/libkwcore.a $(pkg-config --libs jansson libcrypto zlib) \
    $(pkg-config --libs libpq 2>/dev/null)
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
exec build/bench/verify_bench "${1:-1000000}" "${2:-2}"
