#!/bin/bash
# Router-table benchmark: match time with 10 and with 10,000 routers that
# each have a distinct Host rule (the exact-host index must keep them within
# 10% of each other). Builds bench/rules_bench.c against src/rules and runs it.
#   bash bench/rules.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp /tmp/weir-rules-bench.XXXXXX)
trap 'rm -f "$out"' EXIT
gcc -std=gnu11 -O2 -D_GNU_SOURCE -Isrc -o "$out" bench/rules_bench.c src/rules/[a-z]*.c \
    $(pkg-config --libs libpcre2-8)
taskset -c 0 "$out"
