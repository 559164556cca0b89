"""Tiny safetensors reader for numpy (handles BF16, which safetensors.numpy cannot).

BF16 -> float32 by bit-shifting (exact), F16 -> float32, F32 kept, F64 kept.
This is exactly what WeightWatcher's torch path does (`T.to("cpu").float().numpy()`), so the
matrices WW sees here are bit-identical to what it would see when given a torch state_dict.
"""
import glob
import json
import os
import re
import struct

import numpy as np

LAYER_RE = re.compile(r"\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$")

_DT = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "BF16": np.uint16,
       "I64": np.int64, "I32": np.int32, "U8": np.uint8, "I8": np.int8}


def load_dir(path, only_layers=True):
    """Return {name: np.ndarray(float32/float64)} for every tensor in path/*.safetensors.
    only_layers: keep only q,k,v,o,gate,up,down projection weights (2-D)."""
    out = {}
    files = sorted(glob.glob(os.path.join(path, "*.safetensors"))) if os.path.isdir(path) else [path]
    for fn in files:
        with open(fn, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            hdr = json.loads(f.read(n))
            base = 8 + n
            buf = np.memmap(fn, dtype=np.uint8, mode="r")
            for name, info in hdr.items():
                if name == "__metadata__":
                    continue
                if only_layers and not LAYER_RE.search(name):
                    continue
                a, b = info["data_offsets"]
                raw = np.asarray(buf[base + a: base + b])
                dt = info["dtype"]
                arr = raw.view(_DT[dt]).reshape(info["shape"])
                if dt == "BF16":
                    arr = (arr.astype(np.uint32) << 16).view(np.float32)
                elif dt == "F16":
                    arr = arr.astype(np.float32)
                else:
                    arr = np.array(arr)
                out[name] = arr
    return out


def natural_key(name):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
