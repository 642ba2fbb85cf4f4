#!/usr/bin/env bash
# fuzz.sh - build, replay and run the libFuzzer targets in tests/fuzz/.
#
#   scripts/fuzz.sh build  [TARGET...]          compile targets into build-fuzz/
#   scripts/fuzz.sh replay [TARGET...]          build, then run every seed corpus file once;
#                                               non-zero exit if any target fails or crashes
#   scripts/fuzz.sh run SECONDS [TARGET...]     fuzz each target for SECONDS with its corpus
#                                               and dictionary, then print executions
#   scripts/fuzz.sh list                        print the targets
#
# Targets are discovered by globbing tests/fuzz/fuzz_*.c; TARGET is "fuzz_key" or "key".
# Every target links src/core/{err,util,key}.c with libcrypto and zlib (DEFAULT_SOURCES,
# DEFAULT_LIBS); a target adds its own with comment lines anywhere in its .c file:
#     // fuzz-sources: src/app/config.c src/core/duration.c
#     // fuzz-libs: jansson            (pkg-config names; otherwise used as -l<name>)
# Seed corpus: tests/fuzz/corpus/<target>/ (checked in, never written by `run`);
# dictionary: tests/fuzz/<target>.dict (optional). New inputs found by `run` go to
# build-fuzz/corpus/<target>/, crashes to build-fuzz/artifacts/<target>/; copy a crash
# into the seed corpus once fixed so `replay` keeps it fixed.
# Environment: FUZZ_CC (default clang), FUZZ_CFLAGS (extra flags).
set -euo pipefail

cd "$(dirname "$0")/.."

FUZZ_CC=${FUZZ_CC:-clang}
OUT=build-fuzz
DEFAULT_SOURCES=(src/core/err.c src/core/util.c src/core/key.c)
DEFAULT_LIBS=(libcrypto zlib)
# shellcheck disable=SC2054 # the commas are part of -fsanitize=, not separators
CFLAGS=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -std=c17 -D_GNU_SOURCE -pthread -Isrc -Iinclude
        -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter)
# shellcheck disable=SC2206
EXTRA_CFLAGS=(${FUZZ_CFLAGS:-})

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

die() {
    echo "fuzz.sh: $*" >&2
    exit 2
}

usage() {
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 2
}

all_targets() {
    local f
    for f in tests/fuzz/fuzz_*.c; do
        [ -e "$f" ] || continue
        basename "$f" .c
    done
}

# Resolve the command-line names (or all targets if none) into TARGETS.
select_targets() {
    TARGETS=()
    if [ $# -eq 0 ]; then
        mapfile -t TARGETS < <(all_targets)
        [ ${#TARGETS[@]} -gt 0 ] || die "no tests/fuzz/fuzz_*.c targets"
        return
    fi
    local t
    for t in "$@"; do
        t=${t%.c}
        t=${t##*/}
        [[ $t == fuzz_* ]] || t=fuzz_$t
        [ -f "tests/fuzz/$t.c" ] || die "unknown target '$t' (see: scripts/fuzz.sh list)"
        TARGETS+=("$t")
    done
}

# Words after "fuzz-<key>:" on any line of file, with a trailing "*/" removed.
directive() {
    local key=$1 file=$2
    sed -n "s@^[[:space:]]*\(//\|/\*\|\*\)[[:space:]]*fuzz-$key:[[:space:]]*@@p" "$file" |
        sed 's@\*/[[:space:]]*$@@'
}

# Compile one target; skipped when the binary is newer than everything it is built from.
build_one() {
    local t=$1 src=tests/fuzz/$1.c bin=$OUT/$1
    local -a sources=() libs=() ldflags=() seen=()
    local s l

    for s in "${DEFAULT_SOURCES[@]}" $(directive sources "$src"); do
        [ -f "$s" ] || { echo "fuzz.sh: $t: source '$s' not found" >&2; return 1; }
        [[ " ${seen[*]} " == *" $s "* ]] && continue
        seen+=("$s")
        sources+=("$s")
    done
    for l in "${DEFAULT_LIBS[@]}" $(directive libs "$src"); do
        [[ " ${libs[*]} " == *" $l "* ]] || libs+=("$l")
    done
    for l in "${libs[@]}"; do
        if pkg-config --exists "$l" 2>/dev/null; then
            # shellcheck disable=SC2207
            ldflags+=($(pkg-config --cflags --libs "$l"))
        else
            ldflags+=("-l$l")
        fi
    done

    # Up to date if nothing it compiles, no header, and not this script changed since.
    if [ -x "$bin" ] && [ "$0" -ot "$bin" ] &&
        [ -z "$(find "$src" "${sources[@]}" -newer "$bin" 2>/dev/null | head -n 1)" ] &&
        [ -z "$(find src include tests/fuzz -name '*.h' -newer "$bin" 2>/dev/null | head -n 1)" ]; then
        return 0
    fi
    mkdir -p "$OUT"
    echo "build $t: ${sources[*]} ${libs[*]}"
    "$FUZZ_CC" "${CFLAGS[@]}" "${EXTRA_CFLAGS[@]}" -o "$bin" "$src" "${sources[@]}" \
        "${ldflags[@]}" -lm
}

# Build TARGETS; BUILT gets the ones that succeeded. Returns 1 if any failed.
build_targets() {
    local t rc=0
    BUILT=()
    command -v "$FUZZ_CC" >/dev/null || die "$FUZZ_CC not found (set FUZZ_CC)"
    for t in "${TARGETS[@]}"; do
        if build_one "$t"; then
            BUILT+=("$t")
        else
            echo "FAIL build $t" >&2
            rc=1
        fi
    done
    return $rc
}

# Closing line in the form scripts/test.sh counts: one pass or failure per target.
summary() {
    echo "$1 passed, $2 failed"
}

cmd_replay() {
    local t rc=0 n log pass=0
    local -a files
    build_targets || rc=1
    mkdir -p "$OUT/logs"
    for t in "${BUILT[@]}"; do
        files=()
        if [ -d "tests/fuzz/corpus/$t" ]; then
            mapfile -t files < <(find "tests/fuzz/corpus/$t" -type f | sort)
        fi
        if [ ${#files[@]} -eq 0 ]; then
            # No seeds yet: still run the empty input once.
            : >"$OUT/empty.input"
            files=("$OUT/empty.input")
            echo "warn $t: no seed corpus in tests/fuzz/corpus/$t/" >&2
        fi
        n=${#files[@]}
        log=$OUT/logs/$t.replay.log
        # Given files (not directories), libFuzzer executes each input once and exits.
        if "$OUT/$t" -timeout=10 "${files[@]}" >"$log" 2>&1; then
            echo "ok   $t: $n inputs replayed"
            pass=$((pass + 1))
        else
            echo "FAIL $t: replay crashed (log: $log)" >&2
            grep -E "^(==[0-9]+==ERROR|SUMMARY|Running:)|runtime error" "$log" | tail -n 8 >&2 ||
                true
            rc=1
        fi
    done
    summary "$pass" $((${#TARGETS[@]} - pass))
    return $rc
}

# Pull "stat::<name>: N" from a libFuzzer log.
stat_of() {
    sed -n "s/^stat::$1:[[:space:]]*//p" "$2" | tail -n 1
}

cmd_run() {
    local secs=$1 t rc=0 log execs eps cov dictarg pass=0
    shift
    [[ $secs =~ ^[1-9][0-9]*$ ]] || die "run: SECONDS must be a positive integer"
    select_targets "$@"
    build_targets || rc=1
    mkdir -p "$OUT/logs"
    for t in "${BUILT[@]}"; do
        mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t" "tests/fuzz/corpus/$t"
        log=$OUT/logs/$t.run.log
        dictarg=()
        [ -f "tests/fuzz/$t.dict" ] && dictarg=(-dict="tests/fuzz/$t.dict")
        echo "run  $t for ${secs}s ..."
        # First corpus dir is the writable one: new inputs never land in the seed corpus.
        if "$OUT/$t" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
            -artifact_prefix="$OUT/artifacts/$t/" "${dictarg[@]}" \
            "$OUT/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
            execs=$(stat_of number_of_executed_units "$log")
            eps=$(stat_of average_exec_per_sec "$log")
            cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n 1)
            echo "ok   $t: ${execs:-?} executions in ${secs}s (${eps:-?}/s), ${cov:-no stats}"
            pass=$((pass + 1))
        else
            echo "FAIL $t: crash after $(stat_of number_of_executed_units "$log") executions" \
                "(log: $log)" >&2
            grep -E "^(==[0-9]+==ERROR|SUMMARY)|runtime error|Test unit written" "$log" |
                tail -n 8 >&2 || true
            rc=1
        fi
    done
    summary "$pass" $((${#TARGETS[@]} - pass))
    return $rc
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
build)
    select_targets "$@"
    build_targets
    ;;
replay)
    select_targets "$@"
    cmd_replay
    ;;
run)
    [ $# -ge 1 ] || usage
    cmd_run "$@"
    ;;
list)
    all_targets
    ;;
-h | --help | help)
    usage
    ;;
*)
    usage
    ;;
esac
