"""numpy's fastest values-only singular values over a checkpoint's q/k/v, for benches/scan.rs.

Reads the safetensors files directly (header JSON + memory map, bf16 widened to f32), and for
every q/k/v matrix of every layer computes the singular values of the whole matrix and of each
head block with eigvalsh of the f64 Gram matrix of the short side. Prints the seconds taken.
Usage: numpy_scan.py DIR HEAD_DIM
"""

import json
import os
import struct
import sys
import time

import numpy as np


def tensors(directory):
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".safetensors"):
            continue
        path = os.path.join(directory, name)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
        for key, info in header.items():
            if key == "__metadata__":
                continue
            yield key, info, data


def to_f32(info, data):
    a, b = info["data_offsets"]
    raw = data[a:b]
    if info["dtype"] == "BF16":
        u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
        x = u.view(np.float32)
    elif info["dtype"] == "F16":
        x = np.frombuffer(raw, dtype=np.float16).astype(np.float32)
    else:
        x = np.frombuffer(raw, dtype=np.float32)
    return x.reshape(info["shape"])


def values(a):
    a = a.astype(np.float64)
    g = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
    return np.sqrt(np.clip(np.linalg.eigvalsh(g), 0, None))


def main():
    directory, head_dim = sys.argv[1], int(sys.argv[2])
    t0 = time.perf_counter()
    blocks = 0
    for key, info, data in tensors(directory):
        if not any(p in key for p in ("q_proj.weight", "k_proj.weight", "v_proj.weight")):
            continue
        w = to_f32(info, data)
        values(w)
        blocks += 1
        for h in range(w.shape[0] // head_dim):
            values(w[h * head_dim:(h + 1) * head_dim])
            blocks += 1
    print("%.6f\t%d" % (time.perf_counter() - t0, blocks))


if __name__ == "__main__":
    main()
