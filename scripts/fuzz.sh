#!/bin/bash
# Run the libFuzzer targets of fuzz/ (fuzz/README.md).
#
#   scripts/fuzz.sh --list              the targets
#   scripts/fuzz.sh TARGET SECONDS      build build-fuzz/ (clang, -DLEO_FUZZ=ON) and fuzz TARGET
#   scripts/fuzz.sh all SECONDS         every target in turn, SECONDS each
#
# Installs what is missing (clang, libclang-rt-14-dev and the project's packages, as
# scripts/test.sh does). Each target runs on a working copy of its seeds,
# build-fuzz/corpus/TARGET (new inputs the fuzzer finds are kept there between runs);
# crash, leak, timeout and out-of-memory inputs go to build-fuzz/artifacts/TARGET/ and the
# script exits 1 naming them (reproduce with: build-fuzz/fuzz/fuzz_TARGET FILE). The
# fuzzer's output is in build-fuzz/logs/TARGET.log. LEO_FUZZ_JOBS sets the build's -j (2).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: scripts/fuzz.sh --list | TARGET SECONDS | all SECONDS" >&2
    exit 2
}

targets() {
    local f
    for f in fuzz/fuzz_*.cpp; do
        f=${f#fuzz/fuzz_}
        echo "${f%.cpp}"
    done
}

[[ $# -ge 1 ]] || usage
if [[ $1 == --list ]]; then
    targets
    exit 0
fi
[[ $# -eq 2 ]] || usage
target=$1
seconds=$2
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "scripts/fuzz.sh: SECONDS must be a whole number >= 1, not '$seconds'" >&2; exit 2; }
if [[ $target == all ]]; then
    run=($(targets))
else
    target=${target#fuzz_}
    if ! targets | grep -qx -- "$target"; then
        echo "scripts/fuzz.sh: no target '$target'; scripts/fuzz.sh --list shows them" >&2
        exit 2
    fi
    run=("$target")
fi

source scripts/lib.sh
leo_install_deps

dir=build-fuzz
echo "==> configuring and building the fuzz targets in $dir (clang, -DLEO_FUZZ=ON)"
if [[ ! -f $dir/CMakeCache.txt ]]; then
    CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLEO_FUZZ=ON >/dev/null
fi
build_targets=()
for t in "${run[@]}"; do build_targets+=(--target "fuzz_$t"); done
cmake --build "$dir" -j"${LEO_FUZZ_JOBS:-2}" "${build_targets[@]}" >"$dir/build.log" 2>&1 || {
    tail -n 40 "$dir/build.log" >&2
    echo "scripts/fuzz.sh: the fuzz build failed (whole log: $dir/build.log)" >&2
    exit 1
}

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
failed=()
for t in "${run[@]}"; do
    corpus=$dir/corpus/$t
    artifacts=$dir/artifacts/$t
    log=$dir/logs/$t.log
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    # Seeds join the working corpus (an existing file of the same name is kept).
    cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
    echo "==> fuzzing $t for ${seconds}s (corpus $corpus, log $log)"
    rc=0
    "$dir/fuzz/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?
    if [[ $rc -ne 0 ]]; then
        grep -E "ERROR: |runtime error: |SUMMARY: |property violated" "$log" | head -n 5 >&2 || true
        reproducer=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        echo "scripts/fuzz.sh: $t failed (exit $rc); reproducer: ${reproducer:-none written, see $log}" >&2
        [[ -n $reproducer ]] && echo "    reproduce: $dir/fuzz/fuzz_$t $reproducer" >&2
        failed+=("$t")
    else
        stats=$(grep -E "^stat::number_of_executed_units" "$log" | awk '{print $2}')
        cov=$(grep -E "^#[0-9]+.*(DONE|cov:)" "$log" | tail -n 1 | grep -oE "cov: [0-9]+ ft: [0-9]+" || true)
        echo "    ok: ${stats:-?} runs, ${cov:-coverage unknown}, corpus $(ls "$corpus" | wc -l) inputs"
    fi
done

if ((${#failed[@]})); then
    echo "scripts/fuzz.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
