#!/bin/sh
# check-format.sh - fail if any C source differs from .clang-format (apply: make format).
cd "$(dirname "$0")/.." || exit 1
bad=0
for f in $(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 'tests/unit/*.c' 'tests/unit/*.h' \
               'tests/fuzz/*.c' 'tests/fuzz/*.h' 'bench/*.c' 'tests/faults/*.c'); do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "not formatted: $f"
        bad=$((bad + 1))
    fi
done
echo "$(( $(git ls-files 'src/*.[ch]' 'include/*.h' 'tests/unit/*.[ch]' 'tests/fuzz/*.[ch]' 'bench/*.c' 'tests/faults/*.c' | wc -l) - bad )) passed, $bad failed"
[ "$bad" -eq 0 ]
