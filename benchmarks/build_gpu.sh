#!/usr/bin/env bash
# Builds the GPU check on this machine (no GPU needed) and packs what the GPU machine runs into
# build-gpu/, which travels there with the working tree; benchmarks/gpu_check.sh runs it.
#
#   build-gpu/seisseg, build-gpu/tests/cuda_*_test, build-gpu/benchmarks/bench_*   stripped binaries
#   build-gpu/lib/                the shared libraries the GPU machine lacks (RPATH $ORIGIN/lib,
#                                 $ORIGIN/../lib); large ones as .xz, unpacked by gpu_check.sh
#
# The CMake tree is build-gpu-tree/ (kept, so that a rebuild is incremental; never carried).
# Release, CMAKE_CUDA_ARCHITECTURES=90a (sm_90a: wgmma), SEIS_PORTABLE_DEPS=ON.
# Environment: JOBS (default nproc), CUDA_ARCH (default 90a), TARGETS (default: seisseg, the
# cuda_*_test binaries and the bench_* binaries).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TREE=build-gpu-tree
PKG=build-gpu
JOBS=${JOBS:-$(nproc)}
ARCH=${CUDA_ARCH:-90a}

if [[ -z "${TARGETS:-}" ]]; then
  TARGETS=seisseg
  for f in tests/cuda_*_test.cpp benchmarks/bench_*.cpp benchmarks/bench_*.cu; do
    [[ -e "$f" ]] && TARGETS+=" $(basename "${f%.*}")"
  done
fi
echo "== configure $TREE (sm_$ARCH, Release, portable deps)"
mkdir -p "$TREE"
cmake -S . -B "$TREE" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
  -DSEIS_CUDA=ON -DSEIS_PORTABLE_DEPS=ON >"$TREE/configure.log" 2>&1 || {
  cat "$TREE/configure.log"
  exit 1
}
echo "== build: $TARGETS"
build_rc=0
# -k 0: a target that fails (someone's half-written file) does not stop the others.
# shellcheck disable=SC2086
cmake --build "$TREE" -j"$JOBS" --target $TARGETS -- -k 0 || build_rc=$?

echo "== pack $PKG"
rm -rf "$PKG"
mkdir -p "$PKG/lib" "$PKG/tests" "$PKG/benchmarks"
bins=()
missing=()
for t in $TARGETS; do
  src=""
  for cand in "$TREE/$t" "$TREE/tests/$t" "$TREE/benchmarks/$t"; do
    [[ -x "$cand" && -f "$cand" ]] && src=$cand && break
  done
  if [[ -z "$src" ]]; then
    missing+=("$t")
    continue
  fi
  dst="$PKG/${src#"$TREE"/}"
  cp "$src" "$dst"
  strip --strip-unneeded "$dst"
  bins+=("$dst")
done

# Libraries the GPU machine has (glibc, the GCC runtime of its newer compiler) or brings itself
# (the driver, and CUDA, cuBLAS, cuDNN and NCCL from nvcc and PyTorch's pip packages) stay out.
exclude='^(linux-vdso|ld-linux|libc\.so|libm\.so|libmvec|libpthread|libdl\.so|librt\.so|libresolv|libutil|libstdc\+\+|libgcc_s|libcuda\.so|libcudart|libcublas|libcublasLt|libcudnn|libnccl|libnvrtc|libnvJitLink|libnvidia|libcufft|libcurand|libcusparse|libcusolver|libnvToolsExt)'
declare -A copied=()
for b in "${bins[@]}"; do
  if ! readelf -d "$b" | grep -q 'R.*PATH.*[$]ORIGIN'; then
    echo "warning: $b has no \$ORIGIN RPATH" >&2
  fi
  while read -r name path; do
    [[ "$name" =~ $exclude ]] && continue
    if [[ "$path" == "not" ]]; then
      echo "warning: $b needs $name, which is not found here" >&2
      continue
    fi
    [[ -n "${copied[$name]:-}" ]] && continue
    cp -L "$path" "$PKG/lib/$name"
    chmod u+w "$PKG/lib/$name"
    strip --strip-unneeded "$PKG/lib/$name" 2>/dev/null || true
    copied[$name]=$path
  done < <(ldd "$b" | awk '$2 == "=>" { print $1, $3 }')
done
# Large libraries (OpenBLAS is 36 MB) travel compressed; gpu_check.sh unpacks them.
for f in "$PKG"/lib/*; do
  if [[ $(stat -c %s "$f") -gt $((4 << 20)) ]]; then
    xz -T0 -6 "$f"
  fi
done

echo "== $PKG contents"
(cd "$PKG" && find . -type f -printf '%10s  %p\n' | sort -k2)
echo "libraries copied: ${!copied[*]}"
total=$(du -sb "$PKG" | cut -f1)
echo "== $PKG total: $((total / 1024)) KiB ($(du -sh "$PKG" | cut -f1))"
if ((total > 40 << 20)); then
  echo "warning: $PKG is over 40 MiB; the working tree plus carried paths must stay under 64 MiB" >&2
fi
if ((${#missing[@]} > 0)); then
  echo "error: not built: ${missing[*]} (see the build output above)" >&2
  exit 1
fi
exit "$build_rc"
