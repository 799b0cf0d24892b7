#!/usr/bin/env python3
"""Peers of bench_reader: the ways Python training code reads the same HDF5 file.

  h5py_generator  the paper's data generator: a Python generator that reads sample by sample
                  (f['data'][i], f['label'][i]) in a shuffled order and yields batches of numpy arrays.
  dataloader      torch.utils.data.DataLoader over an h5py-backed Dataset (the file opened in each
                  worker), --workers workers, pin_memory=True, shuffled, batch --batch.

Each pass reads every sample once (the last incomplete batch dropped, as seisseg's reader does).
--cold evicts the file from the page cache before each pass (posix_fadvise DONTNEED: clean pages
only). Prints one JSON line per pass: impl, mode, samples, bytes, seconds, samples_per_s, gb_per_s.
Needs h5py, numpy and torch (Debian: python3-h5py, python3-torch).
"""
import argparse
import json
import os
import sys
import time

import h5py
import numpy as np


def evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def sample_bytes(path):
    with h5py.File(path, "r") as f:
        n = f["data"].shape[0]
        per = f["data"].dtype.itemsize * f["data"].shape[1] * f["data"].shape[2]
        if "label" in f:
            per += f["label"].dtype.itemsize * f["label"].shape[1] * f["label"].shape[2]
    return n, per


def h5py_generator(path, batch, seed):
    """The paper's generator: one sample at a time through h5py."""
    with h5py.File(path, "r") as f:
        data, label = f["data"], f.get("label")
        n = data.shape[0]
        order = np.random.default_rng(seed).permutation(n)
        for b in range(n // batch):
            xs, ys = [], []
            for i in order[b * batch:(b + 1) * batch]:
                xs.append(data[i])
                if label is not None:
                    ys.append(label[i])
            yield np.stack(xs)[..., None], (np.stack(ys) if ys else None)


def run_h5py(path, batch, seed):
    count = 0
    for x, _ in h5py_generator(path, batch, seed):
        count += x.shape[0]
    return count


def run_dataloader(path, batch, seed, workers):
    import torch
    from torch.utils.data import DataLoader, Dataset

    class H5Dataset(Dataset):
        def __init__(self, path):
            self.path = path
            self.f = None
            with h5py.File(path, "r") as f:
                self.n = f["data"].shape[0]
                self.has_label = "label" in f

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            if self.f is None:  # opened in each worker: h5py handles must not cross fork
                self.f = h5py.File(self.path, "r")
            x = torch.from_numpy(self.f["data"][i])
            y = torch.from_numpy(self.f["label"][i]) if self.has_label else torch.zeros(0)
            return x, y

    g = torch.Generator()
    g.manual_seed(seed)
    loader = DataLoader(H5Dataset(path), batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
                        pin_memory=True, generator=g, persistent_workers=False)
    count = 0
    for x, _ in loader:
        count += x.shape[0]
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", required=True)
    ap.add_argument("--impl", choices=["h5py_generator", "dataloader"], required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--passes", type=int, default=1)
    a = ap.parse_args()
    n, per = sample_bytes(a.file)
    for _ in range(a.passes):
        if a.cold:
            evict(a.file)
        t0 = time.perf_counter()
        if a.impl == "h5py_generator":
            count = run_h5py(a.file, a.batch, a.seed)
        else:
            count = run_dataloader(a.file, a.batch, a.seed, a.workers)
        s = time.perf_counter() - t0
        rec = {"bench": "reader_peer", "impl": a.impl, "mode": "cold" if a.cold else "warm", "samples": count,
               "bytes": count * per, "seconds": s, "samples_per_s": count / s, "gb_per_s": count * per / s / 1e9}
        if a.impl == "dataloader":
            rec["workers"] = a.workers
        print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
