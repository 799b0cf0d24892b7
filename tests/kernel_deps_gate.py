#!/usr/bin/env python3
"""The kernel libraries stand alone (DESIGN.md: apps -> models, io, engine -> kernels): every seis::
symbol that the archives given here use is defined in one of them, so kernels/ never calls into the
engine (scratch memory is lent through kernels/scratch_pool.h, errors are header-only).

Usage: kernel_deps_gate.py LIB.a [LIB.a ...]; exit 1 listing the symbols used but not defined."""
import subprocess
import sys


def symbols(archive, flag):
    """Mangled names (no spaces) of the symbols `nm -P flag` lists in archive."""
    out = subprocess.run(["nm", "-P", flag, archive], check=True, capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.endswith(":"):
            names.add(parts[0])
    return names


def is_seis(mangled):
    return "4seis" in mangled  # the namespace seis in an Itanium-mangled name


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), check=True, capture_output=True, text=True).stdout
    return out.splitlines()


def main():
    archives = sys.argv[1:]
    if not archives:
        print(__doc__, file=sys.stderr)
        return 2
    defined, used = set(), set()
    for a in archives:
        defined |= symbols(a, "--defined-only")
        used |= {s for s in symbols(a, "--undefined-only") if is_seis(s)}
    missing = sorted(used - defined)
    names = ", ".join(a.rsplit("/", 1)[-1] for a in archives)
    if missing:
        print(f"kernel_deps_gate: {names} use {len(missing)} seis:: symbol(s) defined outside the kernels:", file=sys.stderr)
        for s in demangle(missing):
            print("  " + s, file=sys.stderr)
        return 1
    print(f"kernel_deps_gate: {names}: {len(used)} seis:: symbols used, all defined in the kernel libraries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
