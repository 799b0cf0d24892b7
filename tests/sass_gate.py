#!/usr/bin/env python3
"""The disassembly gate of the tensor-core kernels (GPU.md, "Progress without a GPU").

Disassembles the sm_90a objects given on the command line with cuobjdump (CUDA's, or pip's
nvidia-cuda-cuobjdump) and checks every kernel named in GATES:
- no local memory and no stack (no spills): cuobjdump --dump-resource-usage shows LOCAL:0 STACK:0;
- the main loop, from its first LDSM to its last HMMA, holds the expected instructions (LDSM and
  HMMA.16816.F32.BF16) and none of: integer division (IMAD.HI, I2F), MUFU, local loads/stores, branches;
- an MMA share of that loop of at least MIN_HMMA_SHARE (the legacy kernels spend 1-3% on MMA);
- the staging instructions the design names (LDGSTS, cp.async, in the forward and backward-weight
  halo kernels);
- for the pipelined kernels (BACK_EDGE_LOOPS: the deep convs' cp.async rings), the whole loop, from
  the target of its back edge to the back edge, holds the loads too (LDGSTS, DEPBAR, BAR, LDSM,
  HMMA) and no division, MUFU or local memory: the loader's addresses (and the backward-weight's
  pixel cursors) advance without division.
Prints one line per kernel and exits 1 on any failure, 2 when no cuobjdump can be found.
"""
import collections
import glob
import os
import re
import shutil
import subprocess
import sys

# kernel name fragment -> (required opcodes anywhere, required in the loop)
GATES = {
    "halo_conv_kernel": (set(), {"LDSM", "HMMA.16816.F32.BF16"}),
    # backward-weight: the x halo staged with cp.async; ldmatrix.trans feeds both operands.
    "halo_wgrad_kernel": ({"LDGSTS"}, {"LDSM", "HMMA.16816.F32.BF16"}),
    # deep levels: the cp.async ring (LDGSTS) feeds ldmatrix and mma.sync.
    "deep_conv_kernel": ({"LDGSTS"}, {"LDSM", "HMMA.16816.F32.BF16"}),
    # deep backward-weight: the same ring; ldmatrix.trans feeds both operands.
    "deep_wgrad_kernel": ({"LDGSTS"}, {"LDSM", "HMMA.16816.F32.BF16"}),
}
# kernel name fragment -> opcodes required in the loop closed by the back edge that follows the
# last HMMA and jumps to or before the first LDSM (forward branches inside are allowed: the cursor's
# tap step).
BACK_EDGE_LOOPS = {
    "deep_conv_kernel": {"LDGSTS", "DEPBAR", "BAR.SYNC", "LDSM", "HMMA.16816.F32.BF16"},
    "deep_wgrad_kernel": {"LDGSTS", "DEPBAR", "BAR.SYNC", "LDSM", "HMMA.16816.F32.BF16"},
}
# Extra opcodes for instantiations whose mangled name holds a fragment: the forward halo kernels
# (template flags kBackwardData = false, then kPool: "Lb0ELb") stage with cp.async.
REQUIRED_IF_NAMED = {"Lb0ELb": {"LDGSTS"}}
FORBIDDEN_IN_LOOP = ("IMAD.HI", "I2F", "MUFU", "LDL", "STL", "BRA")
# Division by a constant compiles to a multiply by a magic number (e.g. 0xaaaaaaab for 3).
MAGIC_MULTIPLY = re.compile(r"IMAD\.(?:WIDE|HI)\S*\s[^;]*(?:0x[0-9a-f]{7,8}\b|-0x[0-9a-f]{7,8}\b)")
MIN_HMMA_SHARE = 0.10
BRANCH = re.compile(r"^(?:@!?U?P\w+\s+)?BRA\s+(?:`\()?0x([0-9a-f]+)")


def find_cuobjdump():
    for cand in (os.environ.get("CUOBJDUMP"), shutil.which("cuobjdump"), "/usr/local/cuda/bin/cuobjdump"):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    try:
        import nvidia  # pip's nvidia-cuda-cuobjdump

        for root in nvidia.__path__:
            for path in glob.glob(os.path.join(root, "*", "bin", "cuobjdump")):
                return path
    except ImportError:
        pass
    return None


def run(tool, args):
    return subprocess.run([tool] + args, check=True, capture_output=True, text=True).stdout


def back_edge_problems(addrs, lines, ops, first_ldsm, last_hmma, required):
    """The loop whose back edge is the first branch after the last HMMA that jumps back to or before
    the first LDSM: its required opcodes, and no division, MUFU or local memory in it."""
    for i in range(last_hmma + 1, len(lines)):
        m = BRANCH.search(lines[i])
        if m is None or int(m.group(1), 16) > addrs[first_ldsm]:
            continue
        start = addrs.index(int(m.group(1), 16)) if int(m.group(1), 16) in addrs else None
        if start is None:
            return [f"back edge to 0x{m.group(1)}: no instruction there"]
        body_ops, body_lines = ops[start : i + 1], lines[start : i + 1]
        problems = ["back-edge loop lacks " + op for op in sorted(required) if not any(o.startswith(op) for o in body_ops)]
        forbidden = tuple(f for f in FORBIDDEN_IN_LOOP if f != "BRA")  # branches: the tap step, the back edge
        bad = collections.Counter(o for o in body_ops if o.startswith(forbidden))
        magic = sum(bool(MAGIC_MULTIPLY.search(ln)) for ln in body_lines)
        if magic:
            bad["division by a constant (magic multiply)"] = magic
        if bad:
            problems.append("back-edge loop holds " + ", ".join(f"{k} x{v}" for k, v in bad.items()))
        print(f"     back-edge loop 0x{addrs[start]:x}-0x{addrs[i]:x}: {len(body_ops)} instructions, "
              f"{sum(o.startswith('LDSM') for o in body_ops)} LDSM, {sum(o.startswith('HMMA') for o in body_ops)} HMMA, "
              f"{sum(o.startswith('LDGSTS') for o in body_ops)} LDGSTS, {sum(o.startswith('BRA') for o in body_ops)} BRA")
        return problems
    return ["no back edge around the main loop"]


def main():
    # CMake passes $<TARGET_OBJECTS:...> as one ;-separated argument.
    objects = [o for arg in sys.argv[1:] for o in arg.split(";") if os.path.isfile(o)]
    tool = find_cuobjdump()
    if tool is None:
        print("sass_gate: no cuobjdump (install pip's nvidia-cuda-cuobjdump, or set CUOBJDUMP)")
        return 2
    failures, checked = [], collections.Counter()
    for obj in objects:
        try:
            usage = run(tool, ["--dump-resource-usage", obj])
            sass = run(tool, ["-sass", obj])
        except subprocess.CalledProcessError:
            continue  # an object without device code
        resources = dict(re.findall(r"Function (\S+):\s*\n\s*(REG:.*)", usage))
        for block in re.split(r"\n\s*Function : ", sass)[1:]:
            name = block.split("\n", 1)[0].strip()
            gate = next((g for g in GATES if g in name), None)
            if gate is None:
                continue
            checked[gate] += 1
            anywhere, in_loop = GATES[gate]
            anywhere = set(anywhere).union(*[ops for frag, ops in REQUIRED_IF_NAMED.items() if frag in name])
            found = re.findall(r"/\*([0-9a-f]{4,})\*/\s+((?:@!?U?P\w+\s+)?[A-Z][^;]*);", block)
            addrs, lines = [int(a, 16) for a, _ in found], [ln for _, ln in found]
            ops = [re.sub(r"^@!?U?P\w+\s+", "", ln).split()[0] for ln in lines]
            res = resources.get(name, "")
            problems = []
            if "LOCAL:0" not in res or "STACK:0" not in res:
                problems.append("spills or stack: " + res)
            for op in anywhere:
                if not any(o.startswith(op) for o in ops):
                    problems.append("no " + op)
            ldsm = [i for i, o in enumerate(ops) if o.startswith("LDSM")]
            hmma = [i for i, o in enumerate(ops) if o.startswith("HMMA")]
            share = 0.0
            if not ldsm or not hmma:
                problems.append("no LDSM/HMMA main loop")
            else:
                body = ops[ldsm[0] : hmma[-1] + 1]
                for op in in_loop:
                    if not any(o.startswith(op) for o in body):
                        problems.append("loop lacks " + op)
                bad = collections.Counter(o for o in body if o.startswith(FORBIDDEN_IN_LOOP))
                magic = sum(bool(MAGIC_MULTIPLY.search(ln)) for ln in lines[ldsm[0] : hmma[-1] + 1])
                if magic:
                    bad["division by a constant (magic multiply)"] = magic
                if bad:
                    problems.append("loop holds " + ", ".join(f"{k} x{v}" for k, v in bad.items()))
                share = sum(o.startswith("HMMA") for o in body) / len(body)
                if share < MIN_HMMA_SHARE:
                    problems.append(f"HMMA share {share:.0%} < {MIN_HMMA_SHARE:.0%}")
            if gate in BACK_EDGE_LOOPS and ldsm and hmma:
                problems += back_edge_problems(addrs, lines, ops, ldsm[0], hmma[-1], BACK_EDGE_LOOPS[gate])
            short = gate + "<" + ",".join(re.findall(r"L[ib](\d+)E", name)) + ">"
            verdict = "FAIL" if problems else "ok  "
            detail = ": " + "; ".join(problems) if problems else ""
            print(f"{verdict} {short}: {res.strip()}, loop HMMA share {share:.0%}{detail}")
            if problems:
                failures.append(short)
    for gate in GATES:
        if checked[gate] == 0:
            print(f"FAIL no kernel named {gate} in {len(objects)} object(s)")
            failures.append(gate)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
