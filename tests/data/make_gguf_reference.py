"""Reference data for mpscope's GGUF reader and dequantizers, made with gguf-py (llama.cpp's
own Python package): `pip install gguf==0.19.0 numpy`, then run from the repository root:

    python tests/data/make_gguf_reference.py

Writes
- tests/data/gguf_quants.json: for every block type gguf-py dequantizes, a few random blocks
  (hex) and gguf-py's values for them (little-endian f32 bytes, hex). Legacy types (Q4_0, Q4_1,
  Q5_0, Q5_1, Q8_0) are gguf-py's own quantization of random normal data (kept as "input",
  so mpscope's quantizers can be checked byte for byte); k-quants are random bytes with
  finite f16 scales (any such bytes form a valid block).
- tests/data/tiny.gguf: a 2-layer llama-architecture GGUF (v3) written by GGUFWriter, with
  F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q4_K/Q6_K tensors;
  tests/data/tiny_gguf.json: every tensor's GGUF name, type, GGUF dims and where its values
  start in tests/data/tiny_gguf_values.bin, which holds gguf-py's dequantized values
  (little-endian f32, row-major, tensors in file order).
"""

import json
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize, dequantize

rng = np.random.default_rng(20261130)


def hexbits(values):
    """Values as one hex string of little-endian f32 bytes (8 hex digits a value)."""
    return np.asarray(values, dtype="<f4").reshape(-1).tobytes().hex()


def finite_f16(n):
    """n random finite f16 values as bytes (scale magnitudes like real files')."""
    v = (rng.standard_normal(n) * 0.01).astype(np.float16)
    return v.view(np.uint8).reshape(n, 2)


# Byte offsets of the f16 scale fields inside each k-quant block.
K_SCALES = {
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}

quants = {}
for qt in [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]:
    data = rng.standard_normal((4, 32)).astype(np.float32)
    blocks = quantize(data, qt)
    quants[qt.name] = {
        "input": hexbits(data),
        "blocks": blocks.tobytes().hex(),
        "values": hexbits(dequantize(blocks, qt)),
    }
for qt, offs in K_SCALES.items():
    size = gguf.GGML_QUANT_SIZES[qt][1]
    blocks = rng.integers(0, 256, size=(3, size), dtype=np.uint8)
    for off in offs:
        blocks[:, off:off + 2] = finite_f16(len(blocks))
    quants[qt.name] = {
        "blocks": blocks.tobytes().hex(),
        "values": hexbits(dequantize(blocks, qt)),
    }
with open("tests/data/gguf_quants.json", "w") as f:
    json.dump(quants, f, indent=1)
    f.write("\n")

# A tiny llama GGUF: hidden 32, 2 heads / 1 kv head (head_dim 16), MLP 64, vocab 16.
hidden, heads, kv, hd, ff, vocab = 32, 2, 1, 16, 64, 16
w = gguf.GGUFWriter("tests/data/tiny.gguf", "llama")
w.add_name("tiny test model")
w.add_size_label("20K")
w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
w.add_block_count(2)
w.add_context_length(128)
w.add_embedding_length(hidden)
w.add_feed_forward_length(ff)
w.add_head_count(heads)
w.add_head_count_kv(kv)
w.add_rope_dimension_count(hd)
w.add_layer_norm_rms_eps(1e-5)

expected = {}


def add(name, shape, qt):
    data = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    if qt == T.F32:
        stored = data
        w.add_tensor(name, stored)
    elif qt == T.F16:
        stored = data.astype(np.float16)
        w.add_tensor(name, stored)
    elif qt == T.BF16:
        bits = (data.view(np.uint32) >> 16).astype(np.uint16)
        stored = bits
        w.add_tensor(name, bits.view(np.uint8), raw_dtype=T.BF16)
    else:
        stored = quantize(data, qt)
        w.add_tensor(name, stored, raw_shape=stored.shape, raw_dtype=qt)
    if qt == T.BF16:
        values = (stored.astype(np.uint32) << 16).view(np.float32)
    else:
        values = dequantize(np.asarray(stored).view(np.uint8) if qt not in (T.F32, T.F16) else stored, qt)
    expected[name] = {
        "type": qt.name,
        "ggml_dims": list(reversed(shape)),
        "values": np.asarray(values, dtype="<f4").reshape(-1),
    }


def add_kquant(name, shape, qt):
    size = gguf.GGML_QUANT_SIZES[qt][1]
    nblocks = shape[0] * shape[1] // 256
    blocks = rng.integers(0, 256, size=(nblocks, size), dtype=np.uint8)
    for off in K_SCALES[qt]:
        blocks[:, off:off + 2] = finite_f16(nblocks)
    raw = blocks.reshape(shape[0], -1)
    w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=qt)
    expected[name] = {
        "type": qt.name,
        "ggml_dims": list(reversed(shape)),
        "values": np.asarray(dequantize(raw, qt), dtype="<f4").reshape(-1),
    }


add("token_embd.weight", (vocab, hidden), T.F16)
layer_types = [
    {"attn_q": T.Q8_0, "attn_k": T.Q4_0, "attn_v": T.Q4_1, "attn_output": T.Q5_0,
     "ffn_gate": T.Q5_1, "ffn_up": T.BF16, "ffn_down": T.F32},
    {"attn_q": T.Q8_0, "attn_k": T.Q8_0, "attn_v": T.Q8_0, "attn_output": T.Q8_0,
     "ffn_gate": T.Q8_0, "ffn_up": T.Q8_0, "ffn_down": T.Q8_0},
]
for layer, types in enumerate(layer_types):
    shapes = {
        "attn_q": (heads * hd, hidden), "attn_k": (kv * hd, hidden),
        "attn_v": (kv * hd, hidden), "attn_output": (hidden, heads * hd),
        "ffn_gate": (ff, hidden), "ffn_up": (ff, hidden), "ffn_down": (hidden, ff),
    }
    for part, qt in types.items():
        add(f"blk.{layer}.{part}.weight", shapes[part], qt)
    add(f"blk.{layer}.attn_norm.weight", (hidden,), T.F32)
add_kquant("blk.0.ffn_k4.weight", (2, 256), T.Q4_K)
add_kquant("blk.1.ffn_k6.weight", (2, 256), T.Q6_K)
add("output_norm.weight", (hidden,), T.F32)
add("output.weight", (vocab, hidden), T.Q8_0)

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# Read the file back with gguf-py's reader: its dims and types must be what we meant.
r = gguf.GGUFReader("tests/data/tiny.gguf")
for t in r.tensors:
    e = expected[t.name]
    assert t.tensor_type.name == e["type"], (t.name, t.tensor_type.name)
    assert [int(d) for d in t.shape] == e["ggml_dims"], (t.name, t.shape, e["ggml_dims"])
# The values of every tensor, in file order, as little-endian f32 in one binary file; the
# JSON index says where each tensor's values start.
index, offset = {}, 0
with open("tests/data/tiny_gguf_values.bin", "wb") as f:
    for t in r.tensors:
        e = expected[t.name]
        f.write(e["values"].tobytes())
        index[t.name] = {"type": e["type"], "ggml_dims": e["ggml_dims"], "offset": offset,
                         "count": int(e["values"].size)}
        offset += int(e["values"].size)
with open("tests/data/tiny_gguf.json", "w") as f:
    json.dump(index, f, indent=1)
    f.write("\n")
print("wrote", len(quants), "block types and", len(expected), "tensors")
