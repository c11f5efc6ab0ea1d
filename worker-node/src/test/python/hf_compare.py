"""Checks a kernel library against Hugging Face transformers on the same weights.

    python3 hf_compare.py LIBRARY MODEL_DIR [MODEL_DIR ...] [--prompt 40] [--decode 8]

Each MODEL_DIR is a Hugging Face directory (`./cocoon model random --format hf` writes one). The
library (libcocoon_kernels.so or libcocoon_kernels_cuda.so) gets the safetensors exactly as they
are stored, through its C ABI (ctypes); transformers loads the same files upcast to float64 on the
CPU as the reference. The library prefills a random prompt, then decodes greedily; transformers
runs the whole sequence once, and the logits after every token the library sampled from are
compared by ||lib - ref|| / ||ref||. Weights are multiplied in their own dtype but accumulated in
float32, so any dtype lands under 1e-4 (f32 accumulation over a few hundred terms); argmax
agreement is reported beside it, because random models have near ties.

Needs numpy, and torch + transformers for the reference (the GPU machine has both). Exit status 1
when a model is over the tolerance.
"""
import argparse
import ctypes
import json
import os
import struct
import sys

import numpy as np

TOLERANCE = 1e-4

F32, F16, BF16 = 0, 1, 2
DTYPES = {"F32": F32, "F16": F16, "BF16": BF16}

# ck_tensor_kind: Hugging Face names, per layer where the name has {l}
KINDS = {
    "model.embed_tokens.weight": 0,
    "model.norm.weight": 1,
    "lm_head.weight": 2,
    "model.layers.{l}.input_layernorm.weight": 3,
    "model.layers.{l}.self_attn.q_proj.weight": 4,
    "model.layers.{l}.self_attn.k_proj.weight": 5,
    "model.layers.{l}.self_attn.v_proj.weight": 6,
    "model.layers.{l}.self_attn.o_proj.weight": 7,
    "model.layers.{l}.self_attn.q_proj.bias": 8,
    "model.layers.{l}.self_attn.k_proj.bias": 9,
    "model.layers.{l}.self_attn.v_proj.bias": 10,
    "model.layers.{l}.self_attn.q_norm.weight": 11,
    "model.layers.{l}.self_attn.k_norm.weight": 12,
    "model.layers.{l}.post_attention_layernorm.weight": 13,
    "model.layers.{l}.mlp.gate_proj.weight": 14,
    "model.layers.{l}.mlp.up_proj.weight": 15,
    "model.layers.{l}.mlp.down_proj.weight": 16,
}
F32_ONLY = {1, 3, 8, 9, 10, 11, 12, 13}  # norms and biases: the ABI takes them in f32


class Config(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in
                ("n_layers", "hidden", "n_heads", "n_kv_heads", "head_dim", "ffn_hidden", "vocab", "max_context")] + [
        ("rms_eps", ctypes.c_float), ("rope_theta", ctypes.c_float), ("rope_scaling", ctypes.c_int32),
        ("rope_factor", ctypes.c_float), ("rope_low_freq_factor", ctypes.c_float),
        ("rope_high_freq_factor", ctypes.c_float), ("rope_original_context", ctypes.c_int32),
        ("tied_embeddings", ctypes.c_int32), ("qk_norm", ctypes.c_int32), ("attn_bias", ctypes.c_int32)]


class Sampling(ctypes.Structure):
    _fields_ = [("temperature", ctypes.c_float), ("top_p", ctypes.c_float), ("top_k", ctypes.c_int32),
                ("presence_penalty", ctypes.c_float), ("frequency_penalty", ctypes.c_float),
                ("seed", ctypes.c_uint64)]


class Entry(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_int32), ("pos", ctypes.c_int32), ("n_tokens", ctypes.c_int32),
                ("sample", ctypes.c_int32), ("sampling", Sampling)]


class Batch(ctypes.Structure):
    _fields_ = [("n_entries", ctypes.c_int32), ("entries", ctypes.POINTER(Entry)),
                ("tokens", ctypes.POINTER(ctypes.c_int32)), ("out_tokens", ctypes.POINTER(ctypes.c_int32)),
                ("out_logits", ctypes.POINTER(ctypes.c_float))]


def open_library(path):
    lib = ctypes.CDLL(os.path.abspath(path))
    lib.ck_backend_name.restype = ctypes.c_char_p
    lib.ck_last_error.restype = ctypes.c_char_p
    lib.ck_last_error.argtypes = [ctypes.c_void_p]
    lib.ck_model_create.argtypes = [ctypes.POINTER(Config), ctypes.c_int32, ctypes.POINTER(ctypes.c_void_p)]
    lib.ck_model_set_tensor.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int32, ctypes.c_int,
                                        ctypes.c_void_p, ctypes.c_int64]
    lib.ck_model_finalize.argtypes = [ctypes.c_void_p]
    lib.ck_kv_init.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32]
    lib.ck_step.argtypes = [ctypes.c_void_p, ctypes.POINTER(Batch)]
    lib.ck_model_free.argtypes = [ctypes.c_void_p]
    return lib


def read_safetensors(path):
    """name -> (dtype name, shape, raw little-endian bytes), as stored"""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        out[name] = (t["dtype"], t["shape"], data[begin:end])
    return out


def as_f32(dtype, raw):
    if dtype == "F32":
        return np.frombuffer(raw, dtype="<f4").copy()
    if dtype == "F16":
        return np.frombuffer(raw, dtype="<f2").astype(np.float32)
    if dtype == "BF16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    raise ValueError("unsupported dtype " + dtype)


def config_of(hf):
    rope = hf.get("rope_parameters") or {}
    theta = hf.get("rope_theta", rope.get("rope_theta", 10000.0))
    if hf.get("rope_scaling") or rope.get("rope_type", "default") != "default":
        raise ValueError("rope scaling is not compared here")
    heads = hf["num_attention_heads"]
    c = Config()
    c.n_layers, c.hidden, c.n_heads = hf["num_hidden_layers"], hf["hidden_size"], heads
    c.n_kv_heads = hf.get("num_key_value_heads", heads)
    c.head_dim = hf.get("head_dim") or hf["hidden_size"] // heads
    c.ffn_hidden, c.vocab, c.max_context = hf["intermediate_size"], hf["vocab_size"], hf["max_position_embeddings"]
    c.rms_eps, c.rope_theta = hf["rms_norm_eps"], theta
    c.rope_factor = c.rope_low_freq_factor = c.rope_high_freq_factor = 1.0
    c.tied_embeddings = 1 if hf.get("tie_word_embeddings") else 0
    c.qk_norm = 1 if hf["model_type"] == "qwen3" else 0
    c.attn_bias = 1 if hf["model_type"] == "qwen2" or hf.get("attention_bias") else 0
    return c


class LibraryModel:
    def __init__(self, lib, model_dir):
        self.lib = lib
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = config_of(json.load(f))
        self.m = ctypes.c_void_p()
        self.check(lib.ck_model_create(ctypes.byref(self.cfg), 0, ctypes.byref(self.m)), "create", None)
        tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
        for name, (dtype, _shape, raw) in tensors.items():
            kind, layer = self.kind_of(name)
            if kind in F32_ONLY and dtype != "F32":
                raw, dtype = as_f32(dtype, raw).tobytes(), "F32"
            buf = ctypes.create_string_buffer(raw, len(raw))
            self.check(lib.ck_model_set_tensor(self.m, kind, layer, DTYPES[dtype], buf, len(raw)), name)
        self.check(lib.ck_model_finalize(self.m), "finalize")
        blocks = (self.cfg.max_context + 15) // 16
        self.check(lib.ck_kv_init(self.m, blocks, 16, 1), "kv_init")

    def kind_of(self, name):
        for pattern, kind in KINDS.items():
            if "{l}" not in pattern:
                if name == pattern:
                    return kind, -1
                continue
            prefix, suffix = pattern.split("{l}")
            if name.startswith(prefix) and name.endswith(suffix):
                return kind, int(name[len(prefix):len(name) - len(suffix)])
        raise ValueError("a tensor the ABI has no place for: " + name)

    def check(self, status, what, model=True):
        if status != 0:
            why = self.lib.ck_last_error(self.m if model else None).decode()
            raise RuntimeError("%s: status %d: %s" % (what, status, why))

    def step(self, pos, tokens):
        """feeds tokens at pos; returns (greedy token, logits after the last one)"""
        entry = Entry(0, pos, len(tokens), 1, Sampling(0.0, 1.0, 0, 0.0, 0.0, 0))
        toks = (ctypes.c_int32 * len(tokens))(*tokens)
        out = (ctypes.c_int32 * 1)()
        logits = np.zeros(self.cfg.vocab, dtype=np.float32)
        batch = Batch(1, ctypes.pointer(entry), toks, out, logits.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        self.check(self.lib.ck_step(self.m, ctypes.byref(batch)), "step")
        return out[0], logits.astype(np.float64)

    def free(self):
        self.lib.ck_model_free(self.m)


def reference_logits(model_dir, ids):
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float64, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def compare(lib, model_dir, n_prompt, n_decode, seed):
    lm = LibraryModel(lib, model_dir)
    rng = np.random.default_rng(seed)
    ids = [int(t) for t in rng.integers(0, lm.cfg.vocab, n_prompt)]
    sampled = []  # (position of the last token fed, logits, token)
    tok, logits = lm.step(0, ids)
    sampled.append((len(ids) - 1, logits, tok))
    for _ in range(n_decode):
        ids.append(tok)
        tok, logits = lm.step(len(ids) - 1, [tok])
        sampled.append((len(ids) - 1, logits, tok))
    lm.free()
    ref = reference_logits(model_dir, ids)
    worst, agree = 0.0, 0
    for pos, got, t in sampled:
        r = ref[pos]
        worst = max(worst, float(np.linalg.norm(got - r) / np.linalg.norm(r)))
        agree += int(np.argmax(r) == t)
    return worst, agree, len(sampled)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("library")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--prompt", type=int, default=40)
    ap.add_argument("--decode", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    lib = open_library(a.library)
    print("hf_compare: %s against transformers (float64, CPU)" % lib.ck_backend_name().decode())
    failures = 0
    for d in a.models:
        worst, agree, n = compare(lib, d, a.prompt, a.decode, a.seed)
        ok = worst < TOLERANCE and np.isfinite(worst)
        failures += 0 if ok else 1
        print("%-4s %-50s max rel err %.3g over %d positions, greedy = argmax(ref) at %d/%d" %
              ("ok" if ok else "FAIL", d, worst, n, agree, n))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
