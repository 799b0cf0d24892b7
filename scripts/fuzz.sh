#!/usr/bin/env bash
# Fuzzes seisseg's parsers of outside input with libFuzzer (tests/fuzz: SEG-Y, HDF5 vetting and chunk
# index, safetensors, training checkpoint, run config, picks/events CSV).
#
#   scripts/fuzz.sh [--smoke] [--seconds S] [--runs N] [--build-dir D] [target...]
#
# Builds the fuzz targets (clang, SEIS_FUZZ=ON: ASan + UBSan, CPU only) in D (default build-fuzz),
# assembles each target's seed corpus (files it generates with the project's own writers, plus
# tests/data and ../shared/data), then runs each target for S seconds (default 600; --smoke: 20, the
# bounded run of the test suite). New inputs are kept in D/corpus/<target>, so that long runs build on
# each other; a crashing input is saved as D/findings/<target>-crash-*, to become a regression test.
# --runs N stops each target after N executions instead (with --seconds as well, whichever comes
# first): the same count on an idle machine or a loaded one.
# Exit status: 0 when no target found anything, 1 on a finding or a failed build, 77 when clang or
# libFuzzer is missing (ctest counts that as a skip).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
all_targets=(fuzz_segy fuzz_hdf5_chunk_index fuzz_safetensors fuzz_checkpoint fuzz_run_config fuzz_detection_csv
  fuzz_hdf5_vet)
smoke=0
seconds=""
runs=""
build="$root/build-fuzz"
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --seconds)
      seconds="${2:?--seconds needs a value}"
      shift
      ;;
    --runs)
      runs="${2:?--runs needs a value}"
      shift
      ;;
    --build-dir)
      build="${2:?--build-dir needs a value}"
      shift
      ;;
    -h | --help)
      sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    fuzz_*) targets+=("$1") ;;
    *)
      echo "fuzz.sh: unknown argument '$1' (targets: ${all_targets[*]})" >&2
      exit 2
      ;;
  esac
  shift
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
case "$runs" in *[!0-9]*)
  echo "fuzz.sh: --runs '$runs' is not a whole number" >&2
  exit 2
  ;;
esac
if [ -z "$seconds" ]; then
  if [ -n "$runs" ]; then
    seconds=0 # no time limit: libFuzzer stops after the runs
  elif [ $smoke -eq 1 ]; then
    seconds=20
  else
    seconds=600
  fi
fi
case "$seconds" in '' | *[!0-9]*)
  echo "fuzz.sh: --seconds '$seconds' is not a whole number" >&2
  exit 2
  ;;
esac
limits=(-max_total_time="$seconds")
[ -n "$runs" ] && limits+=(-runs="$runs")
what="$seconds s"
[ -n "$runs" ] && what="$runs runs"
[ -n "$runs" ] && [ "$seconds" != 0 ] && what="$runs runs or $seconds s"
mkdir -p "$build"
build=$(cd "$build" && pwd)

# clang with libFuzzer (Debian: clang and libclang-rt-14-dev), or a visible skip.
probe="$build/probe"
mkdir -p "$probe"
printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' \
  >"$probe/probe.cpp"
if ! command -v clang++ >/dev/null || ! command -v clang >/dev/null ||
  ! clang++ -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" 2>"$probe/err.txt"; then
  echo "fuzz.sh: SKIP: clang++ with libFuzzer is not installed (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  [ -s "$probe/err.txt" ] && head -3 "$probe/err.txt" >&2
  exit 77
fi

jobs=${SEIS_FUZZ_BUILD_JOBS:-$(nproc)}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
t0=$(date +%s)
# Debug at -O1: assertions stay on (nlohmann's among them), and building costs half of -O3.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O1 -DCMAKE_C_FLAGS_DEBUG=-O1 \
  -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DSEIS_CUDA=OFF -DSEIS_FUZZ=ON -DSEIS_BUILD_TESTS=OFF -DSEIS_WERROR=${SEIS_FUZZ_WERROR:-ON} \
  "${launcher[@]}" >"$build/configure.log" 2>&1 || {
  tail -20 "$build/configure.log" >&2
  echo "fuzz.sh: configuring the fuzz build failed (log: $build/configure.log)" >&2
  exit 1
}
cmake --build "$build" --target "${targets[@]}" -j "$jobs" >"$build/build.log" 2>&1 || {
  grep -E 'error|FAILED' "$build/build.log" | head -20 >&2
  echo "fuzz.sh: building the fuzz targets failed (log: $build/build.log)" >&2
  exit 1
}
echo "fuzz.sh: built ${#targets[@]} targets in $(($(date +%s) - t0)) s in $build"

# Per target: the longest input, the time one input may take (the vetting target waits up to 0.25 s for
# a walk, 60 s for a child's sanitizer report and 10 s for h5_vet's own child), and the seeds beyond
# those it writes itself.
max_len() {
  case "$1" in
    fuzz_hdf5_chunk_index) echo 131072 ;;
    fuzz_hdf5_vet) echo 524288 ;; # the synthetic files' /picks and /events chunks are 4096 rows
    *) echo 65536 ;;
  esac
}
input_timeout() {
  case "$1" in
    fuzz_hdf5_vet) echo 90 ;;
    *) echo 10 ;;
  esac
}
outside_seeds() {
  case "$1" in
    fuzz_segy) echo "$root/tests/data/segy" "$root/../shared/data/segy" ;;
    fuzz_hdf5_vet) echo "$root/tests/data/hdf5" ;;
  esac
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export OMP_NUM_THREADS=1
mkdir -p "$build/findings" "$build/logs"
failed=0
summary=()
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  seeds="$build/seeds/$t"
  corpus="$build/corpus/$t"
  rm -rf "$seeds"
  mkdir -p "$seeds" "$corpus"
  if ! SEIS_FUZZ_SEED_DIR="$seeds" "$bin" -runs=0 "$seeds" >"$build/logs/$t.seeds.log" 2>&1; then
    tail -20 "$build/logs/$t.seeds.log" >&2
    echo "fuzz.sh: $t: writing its seeds failed" >&2
    failed=1
    summary+=("$t: seeds failed")
    continue
  fi
  dirs=("$corpus" "$seeds")
  # Files of the format from tests/data and ../shared/data, beside (not under: libFuzzer reads
  # corpus directories recursively) the generated ones.
  rm -rf "$seeds.outside"
  mkdir -p "$seeds.outside"
  for d in $(outside_seeds "$t"); do
    [ -d "$d" ] && find "$d" -maxdepth 1 -type f \( -name '*.sgy' -o -name '*.h5' \) -exec cp {} "$seeds.outside/" \;
  done
  dirs+=("$seeds.outside")
  log="$build/logs/$t.log"
  echo "fuzz.sh: $t: $what ($(find "${dirs[@]}" -type f | wc -l) corpus and seed files)"
  rc=0
  "$bin" "${limits[@]}" -timeout="$(input_timeout "$t")" -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
    -print_final_stats=1 -artifact_prefix="$build/findings/$t-" "${dirs[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # (|| true: a target that fails on its first input logs no "#N" status line, and the finding must
  # still be reported below.)
  cov=$({ grep -E '^#[0-9]+' "$log" || true; } | tail -1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  if [ $rc -ne 0 ]; then
    failed=1
    echo "fuzz.sh: $t: FINDING (exit $rc); the end of $log:" >&2
    grep -v '^#[0-9]' "$log" | tail -40 >&2
    ls "$build/findings/$t-"* 2>/dev/null | sed 's/^/  saved: /' >&2 || true
    summary+=("$t: FINDING after ${execs:-?} executions (log: $log)")
  else
    summary+=("$t: ${execs:-?} executions, ${rate:-?}/s, coverage ${cov:-?}, no finding")
  fi
done
echo "fuzz.sh: summary ($what per target)"
for line in "${summary[@]}"; do echo "  $line"; done
exit $failed
