#!/bin/bash
# Runs every test of weir twice: once on the optimised build, once on the
# AddressSanitizer + UndefinedBehaviorSanitizer build. Unit tests (cmocka,
# TAP output), integration tests (pytest driving the real binary), and the
# fuzz corpora replayed through the libFuzzer targets. Ends with one line:
# "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
PY=/usr/bin/python3
passed=0
failed=0
failures=()

count_tap() { # $1 = label, stdin = TAP stream
    local label=$1 line
    while IFS= read -r line; do
        echo "$line"
        case "$line" in
        "not ok"*) failed=$((failed + 1)); failures+=("$label: ${line#not ok }") ;;
        "ok "*) passed=$((passed + 1)) ;;
        esac
    done
}

run_unit() { # $1 = build dir
    local t
    for t in "$1"/tests/test_*; do
        [ -x "$t" ] || continue
        count_tap "$(basename "$t")[$1]" < <(CMOCKA_MESSAGE_OUTPUT=TAP "$t" 2>&1)
    done
}

run_integration() { # $1 = build dir
    local out summary p f e
    out=$(mktemp)
    WEIR_BIN="$PWD/$1/weir" $PY -m pytest -q -p no:cacheprovider tests/integration 2>&1 | tee "$out"
    summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)' "$out" | tail -1)
    p=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
    f=$(echo "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
    e=$(echo "$summary" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${e:-0}))
    if [ -z "$summary" ]; then
        failed=$((failed + 1)); failures+=("integration[$1]: pytest produced no summary")
    fi
    while IFS= read -r line; do failures+=("integration[$1]: $line"); done \
        < <(grep -E '^(FAILED|ERROR) ' "$out")
    rm -f "$out"
}

run_fuzz_corpus() {
    local f name dir
    for f in build/fuzz/fuzz_*; do
        [ -x "$f" ] || continue
        name=${f##*/fuzz_}
        dir=fuzz/corpus/$name
        if [ ! -d "$dir" ]; then
            failed=$((failed + 1)); failures+=("fuzz $name: no corpus directory $dir"); continue
        fi
        if "$f" -runs=0 "$dir" > "build/fuzz/$name.log" 2>&1; then
            passed=$((passed + 1)); echo "ok fuzz corpus $name ($(ls "$dir" | wc -l) inputs)"
        else
            failed=$((failed + 1)); failures+=("fuzz $name: see build/fuzz/$name.log")
            tail -30 "build/fuzz/$name.log"
        fi
    done
}

build() { # $1 = build dir, $2 = SAN
    if ! make --no-print-directory -j"$JOBS" BUILD="$1" SAN="$2" all \
        $(ls tests/unit/test_*.c 2>/dev/null | sed "s|tests/unit/\(.*\)\.c|$1/tests/\1|"); then
        failed=$((failed + 1)); failures+=("build $1 failed")
        return 1
    fi
}

echo "== optimised build"
if build build 0; then
    echo "== unit tests"
    run_unit build
    echo "== integration tests"
    run_integration build
fi

echo "== fuzz targets and corpus replay"
if make --no-print-directory -j"$JOBS" fuzz; then
    run_fuzz_corpus
else
    failed=$((failed + 1)); failures+=("fuzz build failed")
fi

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if build build/asan 1; then
    run_unit build/asan
    WEIR_SANITIZED=1 run_integration build/asan
fi

if [ ${#failures[@]} -gt 0 ]; then
    echo "== failures"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
