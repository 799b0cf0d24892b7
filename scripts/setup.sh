#!/usr/bin/env bash
# Installs the Debian 12 packages seisseg builds and tests with (root or sudo). The CUDA toolkit,
# cuDNN, cuBLAS and NCCL are expected under /usr/local/cuda; without nvcc the CPU build is made.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
pkgs=(build-essential cmake ninja-build pkg-config
      libopenblas-dev libhdf5-dev libpng-dev libgtest-dev
      nlohmann-json3-dev libcli11-dev libopenmpi-dev openmpi-bin
      python3-numpy python3-h5py python3-torch python3-venv fio)
# With --tests: clang with libFuzzer (and LLVM's OpenMP, which clang builds link) for the fuzzing
# smoke of the test suite (scripts/fuzz.sh --smoke).
if [ "${1:-}" = "--tests" ]; then pkgs+=(clang libclang-rt-14-dev libomp-dev); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# cuobjdump for the disassembly gate of the CUDA kernels (tests/sass_gate.py), from PyPI: the CUDA
# toolkit under /usr/local/cuda may come without it.
if [ -x /usr/local/cuda/bin/nvcc ] && [ ! -x /usr/local/cuda/bin/cuobjdump ] &&
  ! python3 -c 'import glob, nvidia, sys; sys.exit(not any(glob.glob(p + "/*/bin/cuobjdump") for p in nvidia.__path__))' 2>/dev/null; then
  pkgs_pip=(nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm)
  python3 -m pip install -q "${pkgs_pip[@]}" 2>/dev/null || python3 -m pip install -q --break-system-packages "${pkgs_pip[@]}"
fi
# With --tests: the test suite's outside references from PyPI, in a venv of their own so that their
# numpy 2 does not shadow Debian's (which h5py is built against): obspy, whose STA/LTA and
# coincidence trigger tests/sta_lta_test.cpp compares against (about 100 MB of wheels). Best
# effort: without PyPI that test skips visibly.
if [ "${1:-}" = "--tests" ] && ! /opt/seis-obspy/bin/python3 -c 'import obspy' 2>/dev/null; then
  { $SUDO python3 -m venv /opt/seis-obspy && $SUDO /opt/seis-obspy/bin/python3 -m pip install -q obspy; } ||
    echo "setup.sh: obspy could not be installed; the obspy comparison test will skip" >&2
fi
# segyio (Equinor), which tests/segy_headers_test.cpp writes SEG-Y files with and reads predict's
# SEG-Y back with: its own venv for the same reason. Best effort: without it those tests skip visibly.
if [ "${1:-}" = "--tests" ] && ! /opt/seis-segyio/bin/python3 -c 'import segyio' 2>/dev/null; then
  { $SUDO python3 -m venv /opt/seis-segyio && $SUDO /opt/seis-segyio/bin/python3 -m pip install -q segyio; } ||
    echo "setup.sh: segyio could not be installed; the segyio tests will skip" >&2
fi
