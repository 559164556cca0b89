#!/usr/bin/env python3
"""Reference values from WeightWatcher 0.7.7 for mpscope (issue 11).

HOW TO RUN (outside the repo; nothing here touches /work/main):
  python3 -m venv /tmp/venv-ww
  /tmp/venv-ww/bin/pip install --no-deps weightwatcher==0.7.7
  /tmp/venv-ww/bin/pip install numpy scipy pandas matplotlib powerlaw scikit-learn tqdm safetensors threadpoolctl
  cp /work/main/target/release/mpscope /work/ww-out/mpscope-bin     # any mpscope with `synth`
  PYTHONPATH=/work/ww-out/torch_stub:/work/ww-out \
    /tmp/venv-ww/bin/python /work/ww-out/make_ww_reference.py [--bin /work/ww-out/mpscope-bin] [--out /work/ww-out]

(versions used for the stored output: weightwatcher 0.7.7, numpy 2.4.6, scipy 1.17.1,
 scikit-learn 1.9.1, pandas 3.1.1, powerlaw 2.0.0, Python 3.11.7; torch = the stub in torch_stub/.)

What it does
  1. Regenerates three small checkpoints with `mpscope synth` (commands in CHECKPOINTS below;
     the generator is deterministic, so a Rust test can regenerate them in well under a second).
  2. Loads every q,k,v,o,gate,up,down `.weight` (no embeddings, lm_head, norms) as numpy f32
     (st_load.py; same values WW would get from torch via `.float().numpy()`), passes the dict
     {name: ndarray} to WeightWatcher().analyze() -- the PYSTATEDICT path -- and records:
       default analyze():             alpha, alpha_weighted, xmin, xmax, D, sigma, num_pl_spikes,
                                      log_norm, log_spectral_norm, log_alpha_norm, entropy,
                                      stable_rank, matrix_rank, rank_loss, weak_rank_loss,
                                      lambda_max, sv_max, sv_min, status, warning, N, M
       analyze(mp_fit=True):          mp_softrank, num_spikes, sigma_mp, bulk_max, bulk_min, W_scale
                                      (mp_softrank is NOT produced by default analyze())
       analyze(randomize=True) after np.random.seed(0):
                                      rand_distance, num_traps, rand_sigma_mp, rand_bulk_max,
                                      rand_mp_softrank, max_rand_eval, ww_softrank, ww_maxdist
                                      (WW shuffles with the unseeded global np.random: values
                                      vary run to run; so rand_distance is also re-drawn for 8
                                      seeds with WW's own functions: min/mean/max/std)
     plus shape, the eigenvalue count, and the top-5 eigenvalues WW computed (captured from
     WW's own apply_esd, not recomputed). All eigenvalues go to ww_reference_evals.json.
  3. Hand-made matrices (stored in handmade.safetensors, f32, so Rust reads the exact values):
     small-N cases (fewer than 20 eigenvalues), a rank-deficient square case (eigenvalues
     below WW's 1e-5 threshold), a prescribed-Pareto-spectrum case, a too-small (skipped)
     case, and one case where WW's small-N J objective and its final pick (min D) differ.
  4. Checks orientation: WW on W and on W.T gives the same numbers (recorded).
"""
import argparse
import json
import logging
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

from st_load import load_dir, natural_key  # noqa: E402

CHECKPOINTS = {
    "ww-a": ["synth", "{dir}", "--layers", "2", "--hidden", "256", "--heads", "4", "--kv-heads", "2",
             "--intermediate", "512", "--dtype", "f32", "--seed", "7"],
    "ww-heavy": ["synth", "{dir}", "--layers", "2", "--hidden", "256", "--heads", "4", "--kv-heads", "2",
                 "--intermediate", "512", "--dtype", "f32", "--seed", "7", "--heavy-tail", "q,k"],
    "ww-spikes": ["synth", "{dir}", "--layers", "2", "--hidden", "256", "--heads", "4", "--kv-heads", "2",
                  "--intermediate", "512", "--dtype", "f32", "--seed", "7",
                  "--spikes", "q:3,L0.o:5x4,L1.up:4", "--heavy-tail", "L0-1.down:t3"],
}

DEFAULT_COLS = ["alpha", "alpha_weighted", "xmin", "xmax", "D", "sigma", "num_pl_spikes",
                "log_norm", "log_spectral_norm", "log_alpha_norm", "entropy", "stable_rank",
                "matrix_rank", "rank_loss", "weak_rank_loss", "lambda_max", "sv_max", "sv_min",
                "norm", "spectral_norm", "num_evals", "status", "warning", "N", "M", "Q"]
MPFIT_COLS = ["mp_softrank", "num_spikes", "sigma_mp", "bulk_max", "bulk_min", "W_scale"]
RAND_COLS = ["rand_distance", "num_traps", "rand_sigma_mp", "rand_bulk_max", "rand_bulk_min",
             "rand_mp_softrank", "rand_W_scale", "max_rand_eval", "ww_softrank", "ww_maxdist"]
RAND_SEEDS = [0]          # analyze(randomize=True) is slow (KDE-based MP fit of the shuffle)
SPREAD_SEEDS = [0, 1, 2, 3, 4, 5, 6, 7]  # cheap re-draws of rand_distance only (WW functions, no MP fit)


def py(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    return v


class Capture:
    """Wraps WeightWatcher.apply_esd to keep the eigenvalues WW itself computed."""

    def __init__(self, ww):
        self.evals = {}
        orig = ww.WeightWatcher.apply_esd
        cap = self

        def apply_esd(self_, ww_layer, params=None):
            out = orig(self_, ww_layer, params)
            cap.evals[ww_layer.name] = np.array(ww_layer.evals, dtype=np.float64)
            return out

        ww.WeightWatcher.apply_esd = apply_esd


def run_ww(ww, mats, **kw):
    """analyze() on {layer_name + '.weight': W}; returns {layer_name: row dict}."""
    model = {k: v for k, v in mats.items()}
    w = ww.WeightWatcher()
    df = w.analyze(model=model, **kw)
    rows = {}
    for _, r in df.iterrows():
        rows[r["name"]] = {c: py(r[c]) for c in df.columns}
    return rows


def analyze_set(ww, cap, mats):
    """mats: {tensor_name: ndarray}; tensor names end in '.weight'."""
    cap.evals.clear()
    base = run_ww(ww, mats)
    evals = dict(cap.evals)
    mp = run_ww(ww, mats, mp_fit=True)
    rand_runs = []
    for s in RAND_SEEDS:
        np.random.seed(s)
        rand_runs.append(run_ww(ww, mats, randomize=True))
    out, all_evals = {}, {}
    for tname, W in mats.items():
        lname = tname[: -len(".weight")]
        rec = {"shape": list(W.shape), "dtype": str(W.dtype)}
        if lname not in base:
            rec["analyzed"] = False
            rec["why_skipped"] = "WW layer_supported() rejected it (M < min_evals=8, M > max_evals=15000 or N > max_N=50000)"
            out[tname] = rec
            continue
        rec["analyzed"] = True
        b = base[lname]
        for c in DEFAULT_COLS:
            rec[c] = b.get(c)
        ev = evals[lname]
        rec["num_evals_total"] = int(len(ev))
        rec["num_evals_fit"] = int(np.sum(ev > 1e-5))
        rec["top5_evals"] = [float(x) for x in ev[::-1][:5]]
        rec["min_eval"] = float(ev[0])
        m = mp[lname]
        for c in MPFIT_COLS:
            rec[c] = m.get(c)
        rr = {c: rand_runs[0][lname].get(c) for c in RAND_COLS}
        rr["rand_distance_spread"] = rand_distance_spread(ww, W, ev)
        rec["randomize"] = rr
        out[tname] = rec
        all_evals[tname] = [float(x) for x in ev]
    return out, all_evals


def rand_distance_spread(ww, W, evals):
    """rand_distance re-drawn with SPREAD_SEEDS, using WW's own random_eigenvalues() and
    jensen_shannon_distance() exactly as apply_random_esd() does (1 replica, same n_comp)."""
    from weightwatcher.RMT_Util import jensen_shannon_distance
    from weightwatcher.constants import DEFAULT_PARAMS
    w = ww.WeightWatcher()
    params = DEFAULT_PARAMS.copy()
    params["svd_method"] = "fast"
    vals = []
    for s in SPREAD_SEEDS:
        np.random.seed(s)
        re = w.random_eigenvalues([W], min(W.shape), 1, params)
        vals.append(float(jensen_shannon_distance(evals, re)))
    return {"seeds": SPREAD_SEEDS, "min": float(np.min(vals)), "mean": float(np.mean(vals)),
            "max": float(np.max(vals)), "std": float(np.std(vals))}


def handmade():
    """Deterministic hand-made matrices (stored as f32 in handmade.safetensors)."""
    rng = np.random.default_rng(20261130)
    H = {}
    H["small16x64_gauss.weight"] = rng.standard_normal((16, 64)) / 8.0
    H["small12x40_student3.weight"] = rng.standard_t(3, (12, 40)) / 6.0
    H["small19x100_gauss.weight"] = rng.standard_normal((19, 100)) / 10.0
    H["n20x100_gauss.weight"] = rng.standard_normal((20, 100)) / 10.0
    H["min8x32_gauss.weight"] = rng.standard_normal((8, 32)) / 5.0
    H["skip7x32_gauss.weight"] = rng.standard_normal((7, 32)) / 5.0
    # prescribed spectrum: lambda_i Pareto with alpha_true=3 (pdf ~ x^-3), 128 values, random orthogonal U,V
    n, m = 128, 384
    u = (np.arange(n) + 0.5) / n
    lam = (1.0 - u) ** (-1.0 / (3.0 - 1.0))  # quantiles of Pareto(xmin=1, alpha=3)
    U, _ = np.linalg.qr(rng.standard_normal((n, n)))
    V, _ = np.linalg.qr(rng.standard_normal((m, n)))
    H["pareto3_128x384.weight"] = (U * np.sqrt(lam)) @ V.T
    # rank-deficient square: rank 40 of 64 -> 24 eigenvalues ~0 (< 1e-5, dropped before the fit)
    A = rng.standard_normal((64, 40)) / 8.0
    B = rng.standard_normal((40, 64)) / 8.0
    H["rank40_64x64.weight"] = A @ B
    # small-N with a planted spike (J objective and final min-D pick may disagree)
    S = rng.standard_normal((16, 48)) / 7.0
    x = rng.standard_normal(16); y = rng.standard_normal(48)
    S += 1.2 * np.outer(x / np.linalg.norm(x), y / np.linalg.norm(y))
    H["small16x48_spike.weight"] = S
    # Kaiming-uniform 64x256 (bound sqrt(6/fan_in)/sqrt(... ) ~ torch default a=sqrt(5))
    bound = 1.0 / np.sqrt(256)
    H["kaiming64x256.weight"] = rng.uniform(-bound, bound, (64, 256))
    return {k: v.astype(np.float32) for k, v in H.items()}


def small_n_diagnostics(evals):
    """Re-run WWFit's small-N candidate loop to show which xmin the J objective picks vs the
    final pick (WWFit.__init__ re-selects argmin(D) after fit_powerlaw_smallN returns)."""
    from weightwatcher.WW_powerlaw import WWFit
    nz = np.sort(evals[evals > 1e-5])
    f = WWFit(nz)
    J = getattr(f, "Js", None)
    jbest = int(np.nanargmin(J)) if J is not None and np.isfinite(J).any() else None
    return {"N_fit": int(len(nz)), "final_index": int(np.argmin(f.Ds)), "final_xmin": float(f.xmin),
            "final_alpha": float(f.alpha), "final_D": float(f.D),
            "J_index": jbest, "J_xmin": float(nz[jbest]) if jbest is not None else None,
            "J_alpha": float(f.alphas[jbest]) if jbest is not None else None,
            "J_D": float(f.Ds[jbest]) if jbest is not None else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="/work/ww-out/mpscope-bin")
    ap.add_argument("--out", default="/work/ww-out")
    ap.add_argument("--tmp", default="/tmp")
    args = ap.parse_args()

    import weightwatcher as ww
    import scipy
    import sklearn
    import pandas
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    cap = Capture(ww)

    ref = {"_about": {
        "weightwatcher": ww.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
        "sklearn": sklearn.__version__, "pandas": pandas.__version__,
        "how": "see make_ww_reference.py header; definitions in SPEC.md",
        "randomize_seeds": RAND_SEEDS,
        "notes": [
            "alpha etc. from default analyze(); mp_* from analyze(mp_fit=True); randomize.* from analyze(randomize=True) after np.random.seed(s)",
            "warning '' means no warning (WW's value); status 'success'/'failed'",
            "top5_evals are WW's eigenvalues lambda = sv^2 of W (f64 SVD of W as stored, not normalised), descending",
            "num_evals_fit = eigenvalues > 1e-5, the ones WWFit sees",
        ]},
        "checkpoints": {}, "handmade": {}}
    all_evals = {"checkpoints": {}, "handmade": {}}

    for name, cmd in CHECKPOINTS.items():
        d = os.path.join(args.tmp, name)
        full = [args.bin] + [c.replace("{dir}", d) for c in cmd]
        subprocess.run(full, check=True, stdout=subprocess.DEVNULL)
        mats = load_dir(d)
        mats = {k: mats[k] for k in sorted(mats, key=natural_key)}
        res, ev = analyze_set(ww, cap, mats)
        ref["checkpoints"][name] = {"command": "mpscope " + " ".join(cmd).replace("{dir}", "<DIR>"),
                                    "tensors": res}
        all_evals["checkpoints"][name] = ev
        print(f"{name}: {len(res)} tensors", flush=True)

    H = handmade()
    from safetensors.numpy import save_file
    save_file(H, os.path.join(args.out, "handmade.safetensors"))
    res, ev = analyze_set(ww, cap, H)
    for k in res:
        if res[k].get("analyzed") and res[k]["num_evals_fit"] < 20:
            res[k]["small_n"] = small_n_diagnostics(np.array(ev[k]))
    ref["handmade"] = {"file": "handmade.safetensors (f32; regenerate with this script)", "tensors": res}
    all_evals["handmade"] = ev

    # orientation check: W vs W.T on the first checkpoint
    mats = load_dir(os.path.join(args.tmp, "ww-a"))
    some = {k: mats[k] for k in sorted(mats, key=natural_key)[:7]}
    a = run_ww(ww, some)
    b = run_ww(ww, {k: np.ascontiguousarray(v.T) for k, v in some.items()})
    diffs = {}
    for k in a:
        for c in ("alpha", "D", "xmin", "log_norm", "entropy"):
            diffs[c] = max(diffs.get(c, 0.0), abs(a[k][c] - b[k][c]) / max(1e-300, abs(a[k][c])))
    ref["orientation_check"] = {"what": "max relative difference WW(W) vs WW(W.T), ww-a layer 0",
                                "max_rel_diff": diffs}

    with open(os.path.join(args.out, "ww_reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    with open(os.path.join(args.out, "ww_reference_evals.json"), "w") as f:
        json.dump(all_evals, f)
    print("wrote", os.path.join(args.out, "ww_reference.json"))


if __name__ == "__main__":
    main()
