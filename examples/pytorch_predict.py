#!/usr/bin/env python3
"""Open seisseg weights in PyTorch and segment gathers with them.

seisseg writes weights.safetensors under PyTorch's parameter names and layouts (OIHW), for the
network defined in benchmarks/torch_unet.py. This example loads such a file into that network,
normalises each gather the way seisseg does (the mode is recorded in the weights' metadata), and
writes or checks the probabilities:

    python3 examples/pytorch_predict.py run/weights.safetensors gathers.h5 --out torch_prob.npy
    python3 examples/pytorch_predict.py run/weights.safetensors gathers.h5 --compare predicted.h5

--compare reads /prob of a `seisseg predict` output and fails unless every probability agrees to
--atol (default 1e-5). Needs numpy, h5py and torch only (Debian: python3-numpy, python3-h5py,
python3-torch).
"""
import argparse
import json
import os
import struct
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks"))
from torch_unet import UNet  # noqa: E402  (the same network, PyTorch names)

DTYPES = {"F32": np.float32, "BF16": None, "U8": np.uint8}


def read_safetensors(path):
    """Returns ({name: torch tensor}, metadata) from a safetensors file (no extra package needed)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


def normalize(gather, mode):
    """seisseg's io/normalize.cpp: per trace (each receiver column) or per sample, zero mean and unit
    RMS; constant traces become zeros. Statistics in float64, the scaling in float32."""
    x = gather.astype(np.float32)
    if mode == "none":
        return x
    axis = 0 if mode == "trace" else None
    mean = x.astype(np.float64).mean(axis=axis)
    var = np.maximum((x.astype(np.float64) ** 2).mean(axis=axis) - mean * mean, 0.0)
    with np.errstate(divide="ignore"):
        inv = np.where(var > 1e-12, 1.0 / np.sqrt(var), 0.0)
    return (x - np.asarray(mean, dtype=np.float32)) * np.asarray(inv, dtype=np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights")
    p.add_argument("input", help="HDF5 file with /data [N, H, W]")
    p.add_argument("--out", help="write the probabilities [N, H, W] as .npy")
    p.add_argument("--compare", help="a seisseg predict output: check its /prob against ours")
    p.add_argument("--atol", type=float, default=1e-5)
    args = p.parse_args()

    tensors, meta = read_safetensors(args.weights)
    levels = sum(1 for k in tensors if k.startswith("enc.") and k.endswith(".conv1.weight"))
    base = tensors["enc.0.conv1.weight"].shape[0]
    model = UNet(levels, base)
    model.load_state_dict(tensors)
    model.eval()
    mode = meta.get("seisseg.normalize", "trace")

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with h5py.File(args.input, "r") as f:
        data = f["data"]
        probs = np.empty(data.shape, dtype=np.float32)
        with torch.no_grad():
            for i in range(data.shape[0]):
                x = torch.from_numpy(normalize(data[i], mode))[None, None]
                probs[i] = torch.sigmoid(model(x))[0, 0].numpy()
    print(f"{args.weights}: {levels}-level UNet, base {base}, normalize {mode}; {len(probs)} gathers")
    if args.out:
        np.save(args.out, probs)
    if args.compare:
        with h5py.File(args.compare, "r") as f:
            theirs = f["prob"][...]
        diff = float(np.max(np.abs(theirs - probs)))
        print(f"max |seisseg - pytorch| = {diff:.3g} (atol {args.atol:g})")
        if not diff <= args.atol:
            sys.exit(1)


if __name__ == "__main__":
    main()
