#!/usr/bin/env python3
"""Executable form of SPEC.md: re-implements WeightWatcher 0.7.7's default analyze() metrics and its
MP fit (mp_softrank, num_spikes / num_traps) in plain numpy -- no weightwatcher, scipy, sklearn --
starting from the eigenvalues WW computed (ww_reference_evals.json), and compares with
ww_reference.json.  If this passes, SPEC.md's formulas are the ones WW uses.

Run:  /tmp/venv-ww/bin/python /work/ww-out/ww_spec_check.py   (any python3 with numpy works)
"""
import json
import math
import os
import sys

import numpy as np

EVALS_THRESH = 1e-5      # constants.EVALS_THRESH (CPU)
EPSILON = 1e-10          # constants.EPSILON
SMALL_N_CUTOFF = 20      # WW_powerlaw.SMALL_N_CUTOFF


# ----------------------------------------------------------------------------- power-law fit
def ww_fit(evals):
    """WeightWatcher.fit_powerlaw() default path -> WWFit(nz_evals). Returns dict or None (failed)."""
    data = np.sort(evals[evals > EVALS_THRESH]).astype(np.float64)
    N = len(data)
    if N < 2:
        return None  # WW: argmin of an empty array raises -> status 'failed', alpha=-1
    logd = np.log(data)
    alphas = np.zeros(N - 1)
    Ds = np.ones(N - 1)
    for i in range(N - 1):
        n_int = N - i
        n = float(n_int)
        s = np.sum(logd[i:]) - n * logd[i]
        if N < SMALL_N_CUTOFF:
            if n_int < 8 or s <= 1e-12:
                continue
            a = 1.0 + (n - 1.0) / s
            alphas[i] = a
            if a <= 1.0:
                continue
        else:
            with np.errstate(divide="ignore"):
                a = 1.0 + n / s
            alphas[i] = a
            if not a > 1:
                continue
        F_fit = 1.0 - (data[i:] / data[i]) ** (1.0 - a)
        Ds[i] = np.max(np.abs(F_fit - np.arange(n_int) / n))
    # (small-N: if no candidate survived, WW fills index 0 -- not needed for the cases here)
    i = int(np.argmin(Ds))  # first minimum; overrides the small-N J objective
    return {"alpha": alphas[i], "D": Ds[i], "xmin": data[i], "xmax": data[-1],
            "num_pl_spikes": int(np.sum(evals >= data[i]))}


def warning_for(alpha):
    if alpha < 2.0:
        return "over-trained"
    if alpha > 6.0:
        return "under-trained"
    return ""


def norm_metrics(evals, alpha, N):
    norm = np.sum(evals)
    lmax = np.max(evals)
    sv = np.sqrt(evals)
    tol = np.max(sv) * N * np.finfo(np.float64).eps
    rank = np.count_nonzero(sv > tol)
    ev2 = sv * sv
    p = ev2 / np.sum(ev2) + EPSILON
    entropy = -np.sum(p * np.log(p)) / np.log(rank + EPSILON)
    return {"log_norm": math.log10(norm), "log_spectral_norm": math.log10(lmax),
            "alpha_weighted": alpha * math.log10(lmax),
            "log_alpha_norm": math.log10(np.sum(evals ** alpha)),
            "stable_rank": norm / lmax, "matrix_rank": int(rank), "entropy": entropy}


# ----------------------------------------------------------------------------- MP fit
def kde_linear(x, grid, bw):
    d = np.abs(grid[:, None] - x[None, :])
    return np.maximum(0.0, 1.0 - d / bw).sum(axis=1) / (len(x) * bw)


def resid_mp(sigma, to_fit, Q, bw=0.1):
    xde = np.linspace(0, np.max(to_fit) + 0.5, 1000)
    yde = kde_linear(to_fit, xde, bw)
    good = yde > 0.01
    xde, yde = xde[good], yde[good]
    with np.errstate(all="ignore"):
        if Q == 1:
            ymp = np.nan_to_num((1 / (np.pi * sigma * sigma)) * np.sqrt(4 - xde ** 2))
            r = ymp - yde
        else:
            y = 1 / Q
            b = (sigma * (1 + np.sqrt(1 / Q))) ** 2
            a = (sigma * (1 - np.sqrt(1 / Q))) ** 2
            ymp = np.nan_to_num((1 / (2 * np.pi * sigma * sigma * xde * y)) * np.sqrt((b - xde) * (xde - a)))
            xpk = xde[np.where(yde == np.max(yde))][0]
            if (b < xpk) or (b > np.max(xde)) or (a > xpk):
                r = np.zeros(len(yde)) + 1000
            else:
                r = ymp - yde
    return float(np.sum(r ** 2))


def nelder_mead_1d(f, x0, xatol=1e-4, fatol=1e-4, maxiter=200, maxfun=200):
    """scipy.optimize.fmin (non-adaptive Nelder-Mead) specialised to one variable."""
    rho, chi, psi, sig = 1.0, 2.0, 0.5, 0.5
    sim = np.array([x0, (1 + 0.05) * x0 if x0 != 0 else 0.00025])
    ncalls = [0]

    def F(x):
        ncalls[0] += 1
        return f(x)
    fsim = np.array([F(sim[0]), F(sim[1])])
    o = np.argsort(fsim, kind="quicksort"); sim, fsim = sim[o], fsim[o]
    it = 1
    while ncalls[0] < maxfun and it < maxiter:
        if abs(sim[1] - sim[0]) <= xatol and abs(fsim[0] - fsim[1]) <= fatol:
            break
        xbar = sim[0]
        xr = (1 + rho) * xbar - rho * sim[1]; fxr = F(xr)
        shrink = False
        if fxr < fsim[0]:
            xe = (1 + rho * chi) * xbar - rho * chi * sim[1]; fxe = F(xe)
            if fxe < fxr:
                sim[1], fsim[1] = xe, fxe
            else:
                sim[1], fsim[1] = xr, fxr
        else:
            if fxr < fsim[0]:  # (N=1: fsim[-2] is fsim[0]) never true here
                sim[1], fsim[1] = xr, fxr
            elif fxr < fsim[1]:
                xc = (1 + psi * rho) * xbar - psi * rho * sim[1]; fxc = F(xc)
                if fxc <= fxr:
                    sim[1], fsim[1] = xc, fxc
                else:
                    shrink = True
            else:
                xcc = (1 - psi) * xbar + psi * sim[1]; fxcc = F(xcc)
                if fxcc < fsim[1]:
                    sim[1], fsim[1] = xcc, fxcc
                else:
                    shrink = True
            if shrink:
                sim[1] = sim[0] + sig * (sim[1] - sim[0]); fsim[1] = F(sim[1])
        it += 1
        o = np.argsort(fsim, kind="quicksort"); sim, fsim = sim[o], fsim[o]
    return sim[0]


def mp_fit(evals, N, M):
    """WeightWatcher.mp_fit(): returns num_spikes, sigma_mp, mp_softrank, bulk_max(unscaled), Wscale."""
    Q = N / M
    Wscale = np.sqrt(evals.shape[0]) / np.sqrt(np.sum(evals))
    x = (Wscale * Wscale) * evals
    lam_max = np.max(x)
    s = np.sqrt(lam_max / (1 + 1 / np.sqrt(Q)) ** 2)        # calc_sigma(Q, x)
    to_fit = np.sqrt(x) if Q == 1 else x
    grid = np.arange(0.05 * s, 2.0 * s, 0.01 * s)            # optimize.brute grid (np.mgrid[slice])
    J = np.array([resid_mp(g, to_fit, Q) for g in grid])
    s0 = grid[int(np.argmin(J))]
    s1 = nelder_mead_1d(lambda v: resid_mp(v, to_fit, Q), s0)  # brute(finish=fmin)
    bulk_max = (s1 * (1 + 1 / np.sqrt(Q))) ** 2
    TW = 1 / np.sqrt(Q) * np.power(bulk_max, 2 / 3) * np.power(M, -2 / 3)
    num_spikes = int(np.sum(x > bulk_max + np.sqrt(TW)))
    return {"num_spikes": num_spikes, "sigma_mp": s1, "mp_softrank": bulk_max / lam_max,
            "bulk_max": bulk_max / Wscale ** 2, "W_scale": Wscale}


def jensen_shannon_distance(p, q):
    """RMT_Util.jensen_shannon_distance with scipy.stats.entropy written out (natural log)."""
    p = np.asarray(p, float); q = np.asarray(q, float)
    m = (p + q) / 2

    def kl(a, b):
        a = a / a.sum(); b = b / b.sum()
        with np.errstate(all="ignore"):
            t = np.where(a > 0, a * np.log(a / b), 0.0)
        return t.sum()
    return np.sqrt((kl(p, m) + kl(q, m)) / 2)


# ----------------------------------------------------------------------------- compare
def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ref = json.load(open(os.path.join(here, "ww_reference.json")))
    allev = json.load(open(os.path.join(here, "ww_reference_evals.json")))
    worst = {}
    bad = 0
    checked = 0

    def cmp(key, a, b, tol, rel=True):
        nonlocal bad
        if isinstance(b, str) or isinstance(a, str):
            ok = a == b
            d = 0.0 if ok else 1.0
        else:
            d = abs(a - b) / (abs(b) if rel and b != 0 else 1.0)
            ok = d <= tol
        worst[key] = max(worst.get(key, 0.0), d)
        return ok

    for group in ("checkpoints", "handmade"):
        sets = ref[group].items() if group == "checkpoints" else [("handmade", ref["handmade"])]
        for sname, s in sets:
            evs = allev[group][sname] if group == "checkpoints" else allev["handmade"]
            for tname, r in s["tensors"].items():
                if not r.get("analyzed"):
                    continue
                ev = np.array(evs[tname])
                N, M = r["N"], r["M"]
                f = ww_fit(ev)
                checked += 1
                msgs = []
                for k, tol in (("alpha", 1e-9), ("D", 1e-9), ("xmin", 1e-12)):
                    if not cmp(k, f[k], r[k], tol):
                        msgs.append(f"{k} {f[k]} vs {r[k]}")
                if f["num_pl_spikes"] != r["num_pl_spikes"]:
                    msgs.append(f"num_pl_spikes {f['num_pl_spikes']} vs {r['num_pl_spikes']}")
                if warning_for(f["alpha"]) != r["warning"]:
                    msgs.append(f"warning {warning_for(f['alpha'])!r} vs {r['warning']!r}")
                nm = norm_metrics(ev, r["alpha"], N)
                for k in ("log_norm", "log_spectral_norm", "alpha_weighted", "log_alpha_norm",
                          "stable_rank", "entropy"):
                    if not cmp(k, nm[k], r[k], 1e-9):
                        msgs.append(f"{k} {nm[k]} vs {r[k]}")
                if nm["matrix_rank"] != r["matrix_rank"]:
                    msgs.append(f"matrix_rank {nm['matrix_rank']} vs {r['matrix_rank']}")
                mp = mp_fit(ev, N, M)
                for k in ("mp_softrank", "sigma_mp", "bulk_max"):
                    if not cmp(k, mp[k], r[k], 1e-6):
                        msgs.append(f"{k} {mp[k]} vs {r[k]}")
                if mp["num_spikes"] != r["num_spikes"]:
                    msgs.append(f"num_spikes {mp['num_spikes']} vs {r['num_spikes']}")
                if msgs:
                    bad += 1
                    print(f"MISMATCH {sname}/{tname}: " + "; ".join(msgs))
    print(f"checked {checked} matrices, {bad} with mismatches")
    print("worst relative differences:", {k: f"{v:.2e}" for k, v in worst.items()})
    print(f"{checked - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
