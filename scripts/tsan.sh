#!/usr/bin/env bash
# Runs seisseg's threaded code under ThreadSanitizer: the reader's workers, synth's generator threads,
# the windowed inference's prefetch, convert's read-ahead of SEG-Y gathers, the training loop fed by
# reader threads, the stop signal, and (under mpirun, 2 ranks) the MPI communicator's comm thread.
#
#   scripts/tsan.sh [--build-dir D] [--cxx C++] [--cc CC] [--mpiexec M]
#
# Builds the targets it runs (-DSEIS_TSAN=ON, CPU only, -O1 -g1) in D (default build-tsan), then runs
# the GoogleTest programs with threads (the reader, the dataset files, concurrent HDF5 reads, the
# windowed inference's prefetch, the SEG-Y gather stream) and, under mpirun with 2 ranks, mpi_comm_test (the comm thread);
# then the seisseg program: synth, train with 2 reader threads then its resume, a train stopped by
# SIGINT, and detect. Every process writes its reports to D/reports (TSAN_OPTIONS log_path, so
# children whose output goes nowhere too); any report fails the run, and so does a probe with a
# deliberate race that goes unreported. Library reports that are not ours: tests/tsan.supp.
# OMP_NUM_THREADS=1 throughout: Debian's libgomp is not instrumented, so its threads would be false
# positives. Exit status: 0 when nothing was reported, 1 on a report or a failure, 77 when the
# ThreadSanitizer runtime is missing or cannot run here (ctest counts that as a skip).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-tsan"
cxx="${CXX:-c++}"
cc="${CC:-cc}"
mpiexec=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir | --cxx | --cc | --mpiexec)
      [ $# -ge 2 ] || {
        echo "tsan.sh: $1 needs a value" >&2
        exit 2
      }
      case "$1" in
        --build-dir) build="$2" ;;
        --cxx) cxx="$2" ;;
        --cc) cc="$2" ;;
        --mpiexec) mpiexec="$2" ;;
      esac
      shift
      ;;
    -h | --help)
      sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "tsan.sh: unknown argument '$1'" >&2
      exit 2
      ;;
  esac
  shift
done
[ -n "$mpiexec" ] || mpiexec=$(command -v mpiexec || true)
mkdir -p "$build"
build=$(cd "$build" && pwd)
reports="$build/reports"
logs="$build/logs"
tmp="$build/tmp"
rm -rf "$reports" "$logs" "$tmp"
mkdir -p "$reports" "$logs" "$tmp"

export OMP_NUM_THREADS=1
# The tests' temporary files under D, apart from a concurrent ctest's. (Not TMPDIR: OpenMPI puts its
# session sockets there, whose paths may not be long.)
export TEST_TMPDIR="$tmp"
supp="$root/tests/tsan.supp"
tsan_options="halt_on_error=1:exitcode=66:second_deadlock_stack=1:log_path=$reports/tsan"
[ -f "$supp" ] && tsan_options+=":suppressions=$supp"

# The runtime, or a visible skip. The probe has a deliberate race: no report there means the
# checking itself is broken, which is a failure, not a pass. Both racing writes happen while both
# threads live (a rendezvous on relaxed atomics, which order nothing for ThreadSanitizer). The
# earlier probe, whose child could finish before the parent's write, went unreported in 7 of 300
# runs on a loaded 2-core machine (this one: 0 of 500), and failed a CI run that way.
probe="$build/probe"
mkdir -p "$probe"
cat >"$probe/probe.cpp" <<'EOF'
#include <atomic>
#include <thread>
int shared = 0;
std::atomic<int> stage{0};
int main() {
  std::thread t([] {
    shared = 1;
    stage.store(1, std::memory_order_relaxed);
    while (stage.load(std::memory_order_relaxed) != 2) std::this_thread::yield();
  });
  while (stage.load(std::memory_order_relaxed) != 1) std::this_thread::yield();
  shared = 2;
  stage.store(2, std::memory_order_relaxed);
  t.join();
  return shared == 0;
}
EOF
if ! "$cxx" -fsanitize=thread -g -O1 "$probe/probe.cpp" -o "$probe/probe" -pthread 2>"$probe/err.txt"; then
  echo "tsan.sh: SKIP: $cxx cannot build with -fsanitize=thread (Debian: libtsan2 for gcc, libclang-rt-14-dev for clang)" >&2
  head -3 "$probe/err.txt" >&2
  exit 77
fi
# Kernels with more address-space randomisation (vm.mmap_rnd_bits above 28) break older TSan
# runtimes ("unexpected memory mapping"); without randomisation (setarch -R) they run. A probe that
# runs to its end without reporting its race is a broken checker: a failure, not a skip.
launch=()
probe_run() { # 0: reported; 1: ran without reporting; 2: did not run
  rm -f "$probe"/report.*
  local rc=0
  TSAN_OPTIONS="exitcode=66:log_path=$probe/report" "${launch[@]}" "$probe/probe" >"$probe/out.txt" 2>&1 || rc=$?
  if grep -qs 'WARNING: ThreadSanitizer: data race' "$probe"/report.*; then
    [ $rc -eq 66 ] && return 0
    return 1
  fi
  [ $rc -eq 0 ] && return 1
  return 2
}
probe_rc=0
probe_run || probe_rc=$?
if [ $probe_rc -eq 2 ] && setarch "$(uname -m)" -R true 2>/dev/null; then
  launch=(setarch "$(uname -m)" -R)
  probe_rc=0
  probe_run || probe_rc=$?
  [ $probe_rc -eq 0 ] && echo "tsan.sh: running without address-space randomisation (setarch -R)"
fi
if [ $probe_rc -eq 1 ]; then
  echo "tsan.sh: ThreadSanitizer ran the probe without reporting its deliberate race (exit 66 expected)" >&2
  exit 1
elif [ $probe_rc -eq 2 ]; then
  echo "tsan.sh: SKIP: a ThreadSanitizer program does not run here" \
    "(vm.mmap_rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo '?'); also tried setarch -R):" >&2
  cat "$probe"/report.* "$probe/out.txt" 2>/dev/null | head -5 >&2
  exit 77
fi

# The GoogleTest programs with threads, and the tests of each that run them (all: "*"). Left out:
# ReaderFusedPass's three large-gather cases (the same workers as its small cases, at 100 times the
# time: single-threaded arithmetic under ThreadSanitizer), the rest of hdf5_dataset_test (one
# thread), and hdf5_vet_test's two damaged global heaps: a heap object there claims 2^34 or ~2^47
# bytes, and ThreadSanitizer's memcpy checks the whole range the library passes it, touching its
# shadow memory for all of it (past 10 GB, for minutes) before the copy would fault, where the
# uninstrumented library faults at once. The rest of hdf5_vet_test runs: the forked vetting child
# (it dies, hangs, throws, finishes), a loop cut short by the time limit, sound files. The vetting
# also runs from the reader's workers (dataset_files_test, train with --max-open-files 1). The
# convert CLI test runs this build's seisseg, whose threads read and write gathers at once.
tests=(sample_reader_test reader_fused_pass_test reader_direct_io_test dataset_files_test hdf5_dataset_test
  windowed_inference_test hdf5_vet_test segy_test convert_hdf5_cli_test)
declare -A filter=(
  [segy_test]="SegyGatherStream.*"
  [convert_hdf5_cli_test]="ConvertHdf5Cli.RewritesH5pyFilesAndCopiesEverythingElse:ConvertHdf5Cli.GathersHoldingNaNAreKeptAndNamed"
  [reader_fused_pass_test]="-ReaderFusedPass.Float32SeveralReadBlocksPerGather:ReaderFusedPass.Float16ConvertedBlockByBlock:ReaderFusedPass.StoredStatisticsNormaliseTheFirstEpochAsItReads"
  [hdf5_dataset_test]="Hdf5Dataset.ConcurrentReadsFromFourThreads"
  [hdf5_vet_test]="-Vet.KnownLibraryCrashIsAnErrorNamingTheFile:Vet.LibraryFaultIsAnError")
mpi_tests=(mpi_comm_test)
jobs=${SEIS_TSAN_BUILD_JOBS:-$(nproc)}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
t0=$(date +%s)
# -O1 -g1: about half the compile time of -O2 -g (apps/cmd_train.cpp: 14 s against 26 s of CPU), and
# reports still name files and lines.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -g1" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" -DSEIS_CUDA=OFF \
  -DSEIS_TSAN=ON -DSEIS_WERROR="${SEIS_TSAN_WERROR:-ON}" "${launcher[@]}" >"$build/configure.log" 2>&1 || {
  tail -20 "$build/configure.log" >&2
  echo "tsan.sh: configuring the ThreadSanitizer build failed (log: $build/configure.log)" >&2
  exit 1
}
cmake --build "$build" --target seisseg "${tests[@]}" "${mpi_tests[@]}" -j "$jobs" >"$build/build.log" 2>&1 || {
  grep -E 'error|FAILED' "$build/build.log" | head -20 >&2
  echo "tsan.sh: building the ThreadSanitizer targets failed (log: $build/build.log)" >&2
  exit 1
}
t1=$(date +%s)
# Each program must carry the instrumentation, or a clean run would prove nothing.
for f in "$build/seisseg" "${tests[@]/#/$build/tests/}" "${mpi_tests[@]/#/$build/tests/}"; do
  # (grep without -q: an early exit would fail nm's pipe under pipefail.)
  { nm "$f" 2>/dev/null; nm -D "$f" 2>/dev/null; } | grep __tsan_func_entry >/dev/null || {
    echo "tsan.sh: $f is not built with -fsanitize=thread" >&2
    exit 1
  }
done
echo "tsan.sh: built seisseg and ${#tests[@]} + ${#mpi_tests[@]} test programs in $((t1 - t0)) s in $build"

export TSAN_OPTIONS="$tsan_options${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
failed=0
summary=()
# step NAME WANT CMD...: runs CMD (its output in logs/NAME.log), which must exit with WANT within
# 300 s (each takes seconds; a hang, e.g. a deadlock, ends with 124).
step() {
  local name="$1" want="$2"
  shift 2
  local s rc=0
  s=$(date +%s)
  if [ "$(type -t "$1")" = function ]; then
    "$@" >"$logs/$name.log" 2>&1 || rc=$?
  else
    timeout -k 10 300 "${launch[@]}" "$@" >"$logs/$name.log" 2>&1 || rc=$?
  fi
  if [ "$rc" -ne "$want" ]; then
    failed=1
    echo "tsan.sh: $name: exit $rc, expected $want; the end of $logs/$name.log:" >&2
    tail -30 "$logs/$name.log" >&2
    summary+=("$name: FAILED (exit $rc)")
  else
    summary+=("$name: ok, $(($(date +%s) - s)) s")
  fi
}

for t in "${tests[@]}"; do step "$t" 0 "$build/tests/$t" --gtest_filter="${filter[$t]:-*}"; done
# The comm thread: MpiComm's allreduces, broadcasts and the gradient buckets under mpirun, 2 ranks.
if [ -n "$mpiexec" ]; then
  for t in "${mpi_tests[@]}"; do
    step "${t}_np2" 0 "$mpiexec" --allow-run-as-root --oversubscribe --bind-to none -x TSAN_OPTIONS \
      -x OMP_NUM_THREADS -x TEST_TMPDIR -np 2 "$build/tests/$t"
  done
else
  summary+=("mpi_comm_test_np2: not run (no mpiexec)")
fi

# The program: synth's threads; train with 2 reader threads, every augmentation and two data files
# of which one is open at a time (the workers reopen and vet them); its resume; detect's prefetch
# of the next window from a continuous record.
bin="$build/seisseg"
cli="$tmp/cli"
mkdir -p "$cli"
step synth 0 "$bin" synth --out "$cli/a.h5" --samples 12 --height 32 --width 32 --seed 5 --threads 2
step synth_b 0 "$bin" synth --out "$cli/b.h5" --samples 8 --height 32 --width 32 --seed 6 --threads 2
train=("$bin" train --data "$cli/a.h5,$cli/b.h5" --val-fraction 0.2 --levels 2 --base 4 --batch 4 --device cpu
  --threads 2 --prefetch 2 --max-open-files 1 --seed 7 --log-every 1)
step train 0 "${train[@]}" --out "$cli/run" --steps 12 --val-every 4 --flip --max-shift 4 --crop 16x16
step train_resume 0 "$bin" train --resume "$cli/run" --steps 15
step synth_record 0 "$bin" synth --continuous --duration 10 --receivers 16 --seed 3 --threads 2 --out "$cli/rec.h5"
step detect 0 "$bin" detect --weights "$cli/run/weights.safetensors" --in "$cli/rec.h5" --out "$cli/events.csv" \
  --prob "$cli/prob.h5" --device cpu
# The stop signal: SIGINT once the first step is logged, while the reader's workers run; the run
# says so, saves its state and exits 128 + 2; then that state resumes.
# shellcheck disable=SC2317 # (these two run through step)
alive() { # (kill -0 also succeeds on a child that has exited and is not yet waited for)
  local state
  { read -r _ _ state _ <"/proc/$1/stat"; } 2>/dev/null && [ "$state" != Z ]
}
# shellcheck disable=SC2317
sigint() {
  local out="$cli/sigint" pid rc=0
  "${launch[@]}" "${train[@]}" --out "$out" --steps 100000 >"$cli/sigint.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    [ -s "$out/metrics.jsonl" ] && break
    alive "$pid" || break
    sleep 0.1
  done
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 300); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    kill -KILL "$pid"
    echo "tsan.sh: the run did not end within 30 s of SIGINT" >&2
  fi
  wait "$pid" || rc=$?
  cat "$cli/sigint.log"
  if ! grep -q '^stopped by signal 2 ' "$cli/sigint.log" || [ ! -f "$out/state.safetensors" ]; then
    echo "tsan.sh: the run did not stop on SIGINT with its state saved" >&2
    return 1
  fi
  return "$rc"
}
step train_sigint $((128 + 2)) sigint
step train_sigint_resume 0 "$bin" train --resume "$cli/sigint" --steps 3

echo "tsan.sh: ran in $(($(date +%s) - t1)) s"
# Any report fails, also one from a process whose own output went nowhere.
if compgen -G "$reports/tsan*" >/dev/null || grep -l 'WARNING: ThreadSanitizer' "$logs"/*.log >/dev/null 2>&1; then
  failed=1
  echo "tsan.sh: ThreadSanitizer reports:" >&2
  for f in "$reports"/tsan* $(grep -l 'WARNING: ThreadSanitizer' "$logs"/*.log 2>/dev/null); do
    [ -f "$f" ] || continue
    echo "== $f" >&2
    head -60 "$f" >&2
  done
fi
echo "tsan.sh: summary"
for line in "${summary[@]}"; do echo "  $line"; done
exit $failed
