import h5py, numpy as np, sys
N, H, W = int(sys.argv[2]), 4096, 4096
rng = np.random.default_rng(3)
with h5py.File(sys.argv[1], 'w') as f:
    d = f.create_dataset('data', (N, H, W), np.float32)      # h5py's default: contiguous
    l = f.create_dataset('label', (N, H, W), np.uint8)
    f.attrs['dt'] = 0.002
    for i in range(N):
        g = rng.standard_normal((H, W), dtype=np.float32)
        g *= (1 + np.arange(W, dtype=np.float32) / W)
        d[i] = g
        l[i] = (g > 2.5)
