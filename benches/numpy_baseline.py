"""numpy's values-only singular values on the bench shapes, for benches/spectrum.rs.

Prints one line per (shape, method): shape<TAB>method<TAB>best seconds. Arrays are f32 (as
decoded from bf16) and converted inside the timed region, as mpscope does. Argument "1" = quick.
"""

import sys
import time

import numpy as np


def best(reps, f):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def gram_eigvalsh(a):
    a = a.astype(np.float64)
    g = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
    return np.sqrt(np.clip(np.linalg.eigvalsh(g), 0, None))[::-1]


def svd_values(a):
    return np.linalg.svd(a.astype(np.float64), compute_uv=False)


def svd_values_f32(a):
    return np.linalg.svd(a, compute_uv=False)


def main():
    quick = len(sys.argv) > 1 and sys.argv[1] == "1"
    rng = np.random.default_rng(0)

    def kaiming(rows, cols):
        b = 1 / np.sqrt(cols)
        return rng.uniform(-b, b, (rows, cols)).astype(np.float32)

    q = kaiming(2048, 2048)
    kv = kaiming(512, 2048)
    heads = [kaiming(64, 2048) for _ in range(48)]
    methods = [
        ("eigvalsh(f64 gram)", gram_eigvalsh),
        ("svd(f64, compute_uv=False)", svd_values),
        ("svd(f32, compute_uv=False)", svd_values_f32),
    ]
    for name, f in methods:
        print("2048x2048\t%s\t%.6f" % (name, best(1 if quick else 3, lambda: f(q))), flush=True)
        print("512x2048\t%s\t%.6f" % (name, best(1 if quick else 30, lambda: f(kv))), flush=True)
        t = best(1 if quick else 10, lambda: [f(h) for h in heads])
        print("48x64x2048\t%s\t%.6f" % (name, t), flush=True)


if __name__ == "__main__":
    main()
