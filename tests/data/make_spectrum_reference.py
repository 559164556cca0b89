# Usage (throwaway venv outside the repo):
#   python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scipy
#   /tmp/venv/bin/python tests/data/make_spectrum_reference.py tests/data/spectrum_reference.json
# Writes tests/data/spectrum_reference.json: LAPACK (numpy f64) singular values of fixed
# matrices built from a hash both Python and Rust evaluate exactly, and scipy kstest p-values.
import json, sys
import numpy as np
from scipy import stats

M64 = (1 << 64) - 1

def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)

def entry(seed, i, j, cols):
    k = splitmix64(((seed << 32) + i * cols + j) & M64) >> 40
    return (k - (1 << 23)) / float(1 << 24)

def sign(seed, salt, i):
    return 1.0 if splitmix64(((seed * 7919 + salt) << 20) + i) & 1 else -1.0

def matrix(spec):
    r, c, seed = spec["rows"], spec["cols"], spec["seed"]
    a = np.empty((r, c))
    for i in range(r):
        g = 2.0 ** -(spec["grade"] * i // r)
        for j in range(c):
            a[i, j] = entry(seed, i, j, c) * g
    if spec["spike"]:
        s = np.array([sign(seed, 1, i) for i in range(r)])
        t = np.array([sign(seed, 2, j) for j in range(c)])
        a += spec["spike"] * np.outer(s, t)
    assert np.all(a.astype(np.float32).astype(np.float64) == a)
    return a

specs = [
    dict(name="graded_64x200", rows=64, cols=200, seed=1, grade=12, spike=0.0),
    dict(name="square_100x100", rows=100, cols=100, seed=2, grade=0, spike=0.0),
    dict(name="spike_300x80", rows=300, cols=80, seed=3, grade=0, spike=0.25),
    dict(name="tall_1x7", rows=7, cols=1, seed=4, grade=0, spike=0.0),
]
out = {"about": "numpy.linalg.svd(compute_uv=False) in f64 of hash-defined f32 matrices "
                "(see tests/spectrum_reference.rs), and scipy.stats.kstest(v, 'norm', "
                "args=(0, 1/sqrt(n))) p-values",
       "numpy": np.__version__, "scipy": __import__("scipy").__version__,
       "matrices": [], "kstest": []}
for spec in specs:
    a = matrix(spec)
    sv = np.linalg.svd(a, compute_uv=False)
    out["matrices"].append(dict(spec, checksum=float(a.sum()), values=[float(x) for x in sv]))

rng = np.random.RandomState(20240601)
for n in [1, 2, 3, 5, 10, 30, 64, 100, 140, 141, 300, 512, 2048, 3072]:
    for kind in ["normal", "wide", "t3", "shift"]:
        z = rng.standard_normal(n)
        if kind == "wide":
            z *= 1.15
        elif kind == "t3":
            z = rng.standard_t(3, n) / np.sqrt(3.0)
        elif kind == "shift":
            z += 0.12
        v = np.array([float("%.8g" % x) for x in z / np.sqrt(n)])
        res = stats.kstest(v, "norm", args=(0, 1 / np.sqrt(n)))
        out["kstest"].append(dict(n=n, kind=kind, statistic=float(res.statistic),
                                  pvalue=float(res.pvalue), data=[float(x) for x in v]))
s = json.dumps(out, separators=(",", ":"))
open(sys.argv[1], "w").write(s)
print(len(s), "bytes")
for k in out["kstest"]:
    print(k["n"], k["kind"], "%.4f %.4g" % (k["statistic"], k["pvalue"]))
