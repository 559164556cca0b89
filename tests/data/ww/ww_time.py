#!/usr/bin/env python3
"""Time WeightWatcher 0.7.7's default analyze() and numpy eigvalsh of the f64 Gram matrices
over all layer matrices (q,k,v,o,gate,up,down; no embeddings / lm_head / norms) of a
safetensors checkpoint directory.

Run (venv from SPEC.md §0; the torch stub dir must be on PYTHONPATH):
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    PYTHONPATH=tests/data/ww/torch_stub \
    /tmp/venv-ww/bin/python tests/data/ww/ww_time.py /tmp/smol [--repeat 1]

Prints: matrix count, load time, WW analyze() seconds, eigvalsh-of-Gram seconds, and
threadpoolctl's BLAS info (library, version, threads, kernel = internal_api/architecture).
Loading the safetensors (bf16 -> f32) is excluded from both timings.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

from st_load import load_dir, natural_key  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-ww", action="store_true")
    args = ap.parse_args()

    from threadpoolctl import threadpool_info
    import logging
    import weightwatcher as ww
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)

    t0 = time.perf_counter()
    mats = load_dir(args.dir)
    names = sorted(mats, key=natural_key)
    mats = {k: mats[k] for k in names}
    t_load = time.perf_counter() - t0
    print(f"matrices: {len(mats)}  (load {t_load:.2f}s)  shapes: "
          f"{sorted(set(tuple(v.shape) for v in mats.values()))}  dtype: {next(iter(mats.values())).dtype}")
    for i in threadpool_info():
        print("threadpoolctl:", {k: i.get(k) for k in ("user_api", "internal_api", "version",
                                                       "num_threads", "architecture", "filepath")})
    print("env OPENBLAS_CORETYPE=", os.environ.get("OPENBLAS_CORETYPE"),
          " OPENBLAS_L2_SIZE=", os.environ.get("OPENBLAS_L2_SIZE"),
          " OMP_NUM_THREADS=", os.environ.get("OMP_NUM_THREADS"), " cores:", os.cpu_count())

    for rep in range(args.repeat):
        if not args.skip_ww:
            w = ww.WeightWatcher()
            t0, c0 = time.perf_counter(), time.process_time()
            df = w.analyze(model=dict(mats))  # default analyze()
            t_ww, c_ww = time.perf_counter() - t0, time.process_time() - c0
            print(f"[{rep}] WW analyze() default: {t_ww:.2f} s wall, {c_ww:.2f} s CPU  "
                  f"({len(df)} layers analyzed; loadavg {os.getloadavg()[0]:.2f})")

        t0, c0 = time.perf_counter(), time.process_time()
        tot = 0.0
        for k, W in mats.items():
            A = W.astype(np.float64)
            G = A @ A.T if A.shape[0] <= A.shape[1] else A.T @ A  # short side
            ev = np.linalg.eigvalsh(G)
            tot += ev[-1]
        t_eig, c_eig = time.perf_counter() - t0, time.process_time() - c0
        print(f"[{rep}] numpy eigvalsh(f64 Gram, short side): {t_eig:.2f} s wall, {c_eig:.2f} s CPU "
              f"(incl. astype+Gram; loadavg {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
