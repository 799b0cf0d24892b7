#!/usr/bin/env python3
"""The seisseg UNet in PyTorch, for timing a training step on the same device as bench_step.

Same network as models/unet.cpp (DESIGN.md "The model"): per encoder level conv3x3+ReLU twice,
maxpool 2x2 between levels; per decoder level nearest x2 upsample, conv3x3+ReLU, concat [skip, up],
conv3x3+ReLU twice; 1x1 head; BCE with logits; Adam. Parameter names match seisseg's safetensors,
so a seisseg weights.safetensors loads into it (examples/pytorch_predict.py).

Prints one JSON line per configuration measured.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Conv(nn.Conv2d):
    def __init__(self, cin, cout, k=3):
        super().__init__(cin, cout, k, padding=k // 2)


class Level(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = Conv(cin, cout)
        self.conv2 = Conv(cout, cout)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class UNet(nn.Module):
    def __init__(self, levels=7, base=8, in_channels=1):
        super().__init__()
        c = [base << l for l in range(levels)]
        self.levels = levels
        self.enc = nn.ModuleList([Level(in_channels if l == 0 else c[l - 1], c[l]) for l in range(levels)])
        # Index l holds decoder level l (levels-1 has none); names match seisseg: up.{l}, dec.{l}.
        self.up = nn.ModuleDict({str(l): Conv(c[l + 1], c[l]) for l in range(levels - 1)})
        self.dec = nn.ModuleDict({str(l): Level(2 * c[l], c[l]) for l in range(levels - 1)})
        self.head = Conv(c[0], 1, 1)

    def forward(self, x):
        skips = []
        for l in range(self.levels):
            x = self.enc[l](x)
            skips.append(x)
            if l + 1 < self.levels:
                x = F.max_pool2d(x, 2)
        for l in range(self.levels - 2, -1, -1):
            up = F.relu(self.up[str(l)](F.interpolate(x, scale_factor=2, mode="nearest")))
            x = self.dec[str(l)](torch.cat([skips[l], up], dim=1))
        return self.head(x)


def time_step(args, mode):
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = UNet(args.levels, args.base).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(args.batch, 1, args.size, args.size, device=dev)
    y = (torch.rand(args.batch, 1, args.size, args.size, device=dev) < 0.1).float()
    amp = mode.startswith("amp_bf16")
    if amp or mode == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    fwd = model
    if mode.endswith("compile"):
        fwd = torch.compile(model)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.binary_cross_entropy_with_logits(fwd(x), y)
        loss.backward()
        opt.step()
        return loss

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1e3
    rec = {
        "bench": "step",
        "impl": "pytorch",
        "mode": mode,
        "torch": torch.__version__,
        "device": args.device if dev.type == "cpu" else torch.cuda.get_device_name(dev),
        "threads": torch.get_num_threads(),
        "levels": args.levels,
        "base": args.base,
        "size": args.size,
        "batch": args.batch,
        "params": sum(p.numel() for p in model.parameters()),
        "ms_per_step": round(ms, 3),
        "samples_per_s": round(args.batch / (ms / 1e3), 3),
    }
    if dev.type == "cuda":
        rec["peak_bytes"] = torch.cuda.max_memory_allocated(dev)
    print(json.dumps(rec), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--levels", type=int, default=5)
    p.add_argument("--base", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--modes", default="fp32",
                   help="comma list of fp32, channels_last, amp_bf16, amp_bf16_compile")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    for mode in args.modes.split(","):
        try:
            time_step(args, mode)
        except Exception as e:  # a mode that fails (e.g. torch.compile without a compiler) is reported, not fatal
            print(json.dumps({"bench": "step", "impl": "pytorch", "mode": mode, "error": str(e)[:300]}), flush=True)


if __name__ == "__main__":
    main()
