#!/usr/bin/env python3
"""The oracle check of the GPU harness: our DenseNet-121 logits (dist/gpu_logits.js) against
PyTorch's on the same weights and input (torch_bench.py --oracle-dir).

The reference is PyTorch in float64 on the CPU; PyTorch's float32 CUDA logits (TF32 off) are
compared to it too, to show what float32 rounding alone gives. Pass: max |ours - ref| <=
TOLERANCE * max |ref| (relative to the logits' scale) and the same top-1 class for every image.
Writes a JSON verdict (--out) and exits 0 on pass, 1 on fail, 2 on unreadable input.
Needs only numpy.
"""
import argparse
import json
import sys

import numpy as np

# float32 through 121 layers differs from float64 by ~1e-6..1e-5 of the logits' scale (accumulation
# order); a wrong weight layout, BN formula or padding gives errors of order 1.
TOLERANCE = 1e-3


def compare(ours, ref):
    """Errors of `ours` against `ref` (same shape): max abs, max abs relative to max |ref|, top-1 agreement."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        return {"shape": list(ours.shape), "ref_shape": list(ref.shape), "max_abs": None, "max_rel": None, "top1_agree": 0, "pass": False}
    scale = float(np.abs(ref).max())
    diff = np.abs(ours - ref)
    max_abs = float(diff.max()) if np.isfinite(diff).all() else float("inf")
    max_rel = max_abs / scale if scale > 0 else max_abs
    agree = int((ours.argmax(axis=1) == ref.argmax(axis=1)).sum())
    return {"shape": list(ours.shape), "max_abs": max_abs, "max_rel": max_rel, "ref_scale": scale, "top1_agree": agree,
            "images": int(ref.shape[0]), "pass": bool(max_rel <= TOLERANCE and agree == ref.shape[0])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ours", required=True, help="our logits .npy (N, classes)")
    p.add_argument("--ref", required=True, help="PyTorch float64 CPU logits .npy")
    p.add_argument("--torch-cuda", help="PyTorch float32 CUDA logits .npy (optional, for scale)")
    p.add_argument("--out", required=True, help="JSON verdict")
    a = p.parse_args(argv)
    try:
        ours, ref = np.load(a.ours), np.load(a.ref)
        cuda = np.load(a.torch_cuda) if a.torch_cuda else None
    except (OSError, ValueError) as e:
        print(f"compare_logits: cannot read the logits: {e}", file=sys.stderr)
        return 2
    verdict = {"tolerance": TOLERANCE, "rule": "max|ours - ref| <= tolerance * max|ref| and equal top-1 for every image",
               "reference": "PyTorch float64 on the CPU", "ours": compare(ours, ref)}
    if cuda is not None:
        verdict["torch_cuda_f32"] = compare(cuda, ref)
    verdict["pass"] = verdict["ours"]["pass"]
    with open(a.out, "w") as f:
        json.dump(verdict, f, indent=2)
    o = verdict["ours"]
    print(f"logits oracle: ours vs PyTorch float64, shape {o['shape']}: max abs error {o['max_abs']}, "
          f"relative to max |logit| {o['max_rel']}, top-1 agree {o['top1_agree']}/{ref.shape[0]}: "
          f"{'PASS' if o['pass'] else 'FAIL'} (tolerance {TOLERANCE})")
    if cuda is not None:
        c = verdict["torch_cuda_f32"]
        print(f"  for scale, PyTorch float32 CUDA vs float64: max abs {c['max_abs']}, relative {c['max_rel']}")
    return 0 if verdict["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
