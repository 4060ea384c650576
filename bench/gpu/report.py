#!/usr/bin/env python3
"""The GPU harness's one table: images/s of ours (each memory strategy), PyTorch (eager with its
defaults, eager in strict float32, torch.compile) and tfjs-webgpu on the same card, with ours'
ratios, from the JSON files run.sh collects, then where our step's GPU time goes (the `bench
profile` files: the slowest layer roles). Any file may be missing or hold errors (a step that
failed): its cells read "—". Writes markdown (--md) and the merged numbers (--json); prints the
markdown. Needs only the standard library.
"""
import argparse
import json
import os


def load(path):
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"error": f"cannot read {path}: {e}"}


def torch_rate(doc, kind, model, batch, tf32):
    """images/s of a torch_bench.py row, or None."""
    for row in (doc or {}).get(kind, []):
        if row.get("model") == model and row.get("batch") == batch and row.get("tf32") == tf32 and "images_per_sec" in row:
            return row["images_per_sec"]
    return None


def fmt(v, digits=1):
    return "—" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def build(train, inference, eager, compiled, logits, train_model="densenet-bc-100-12", train_batch=64, variants=()):
    """Rows of the two sections and the merged record. `variants`: (label, bench train JSON) pairs of
    extra ours-fused runs (tuned; bounds checks off), shown under the strategies."""
    anchors = lambda kind, model, batch: {  # noqa: E731
        "PyTorch eager": torch_rate(eager, kind, model, batch, True),
        "PyTorch eager fp32": torch_rate(eager, kind, model, batch, False),
        "PyTorch compile": torch_rate(compiled, kind, model, batch, True),
    }
    sections = []

    # Training: ours per strategy and tfjs-webgpu from `bench train --json` ({header, rows}).
    train_rows = [r for r in (train or {}).get("rows", []) if r.get("model") == train_model and r.get("batch") == train_batch]
    tfjs = next((r.get("imagesPerSec") for r in train_rows if r.get("impl") == "tfjs-webgpu"), None)
    ours = [(r["impl"], r.get("imagesPerSec"), r.get("notRunReason")) for r in train_rows if r.get("impl", "").startswith("ours-")]
    for label, doc in variants:
        if doc is None:
            continue
        row = next((r for r in doc.get("rows", []) if r.get("model") == train_model and r.get("batch") == train_batch and r.get("impl") == "ours-fused"), {})
        ours.append((f"ours-fused, {label}", row.get("imagesPerSec"), row.get("notRunReason") or doc.get("error") or ("no row" if not row else None)))
    sections.append({"title": f"training step, {train_model}, batch {train_batch}", "ours": ours,
                     "anchors": {**anchors("train", "densenet-bc-100-12", train_batch), "tfjs-webgpu": tfjs}})

    # Inference: ours and tfjs-webgpu from `bench inference --json` (a list of rows).
    for batch in sorted({r.get("batch") for r in (inference if isinstance(inference, list) else [])}) or [1, 32]:
        row = next((r for r in (inference if isinstance(inference, list) else []) if r.get("batch") == batch), {})
        sections.append({"title": f"inference, {row.get('model', 'densenet121')}, batch {batch}", "ours": [("ours-fused", row.get("oursImagesPerSec"), row.get("oursError"))],
                         "anchors": {**anchors("inference", "densenet121", batch), "tfjs-webgpu": row.get("tfjsImagesPerSec")},
                         "ours_vs_tfjs_max_rel_diff": row.get("maxRelDiff")})
    adapter = ((train or {}).get("header") or {}).get("adapter") or {}
    return {"adapter": adapter, "torch_device": (eager or {}).get("device"), "torch": (eager or {}).get("torch"),
            "sections": sections, "logits": logits}


def profile_lines(doc, rows=8):
    """The profile's summary line and its slowest layer roles, or a line saying it did not run."""
    h = (doc or {}).get("header")
    if not h:
        return ["not run (see run.log)"]
    num = lambda v, d=1: "—" if v is None else f"{v:,.{d}f}"  # noqa: E731
    lines = [f"{h['model']}, batch {h['batch']}, {h['mode']}, memory {h['memory']}, {h['kernels']} kernels, {h['launches']} launches: "
             f"wall {num(h.get('wallMs'))} ms, GPU {num(h.get('gpuStepMs'))} ms per step "
             f"({num(h['gflopPerStep'] / (h['gpuStepMs'] / 1000) if h.get('gpuStepMs') else None)} GFLOP/s), launches one by one {num(h.get('launchSumMs'))} ms",
             "", "| layer role | launches | ms/step | share | GFLOP/s | GB/s |", "|---|---|---|---|---|---|"]
    for g in doc.get("byRole", [])[:rows]:
        lines.append(f"| {g['name']} | {g['launches']} | {num(g['ms'], 2)} | {100 * g['share']:.1f}% | {num(g.get('gflops'))} | {num(g.get('gbps'))} |")
    return lines


def markdown(merged):
    names = ["PyTorch eager", "PyTorch eager fp32", "PyTorch compile", "tfjs-webgpu"]
    a = merged["adapter"]
    lines = [f"# densenet-wgsl on {a.get('name', '?')} ({a.get('backend', '?')}, driver {a.get('driver', '?')}); PyTorch {merged.get('torch') or '—'} on {merged.get('torch_device') or '—'}", ""]
    lines.append("images/s (higher is better); ratio = ours / that column. PyTorch eager: its defaults (cuDNN may use TF32); fp32: TF32 off, as ours.")
    for s in merged["sections"]:
        anchor = [s["anchors"].get(n) for n in names]
        lines += ["", f"## {s['title']}", "", "anchors, images/s: " + " · ".join(f"{n} {fmt(v)}" for n, v in zip(names, anchor)), "",
                  "| ours | images/s | " + " | ".join(f"÷ {n}" for n in names) + " |", "|---" * (2 + len(names)) + "|"]
        if not s["ours"]:
            lines.append("| (not run: see run.log) | — |" + " — |" * len(names))
        for impl, rate, why in s["ours"]:
            label = impl if rate is not None or not why else f"{impl} (not run: {str(why)[:80]})"
            lines.append(f"| {label} | {fmt(rate)} | " + " | ".join(fmt(ratio(rate, v), 2) for v in anchor) + " |")
    lg = merged.get("logits")
    lines.append("")
    if lg and "ours" in lg:
        o = lg["ours"]
        lines.append(f"logits oracle (densenet121, random weights, {o.get('images')} images, vs PyTorch float64): max abs error {o.get('max_abs')}, "
                     f"relative {o.get('max_rel')}, top-1 agree {o.get('top1_agree')}/{o.get('images')}: {'PASS' if lg.get('pass') else 'FAIL'} (tolerance {lg.get('tolerance')})")
    else:
        lines.append("logits oracle: not run (see run.log)")
    for kind in ("train", "inference"):
        if kind in merged.get("profiles", {}):
            lines += ["", f"## where our {kind} step's GPU time goes (bench profile)", "", *profile_lines(merged["profiles"][kind])]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    for name in ["train", "inference", "torch-eager", "torch-compile", "logits", "profile-train", "profile-inference", "train-tuned", "train-norobust"]:
        p.add_argument(f"--{name}")
    p.add_argument("--info", help="output of `densenet-wgsl info` (its adapter line heads the table when train.json is missing)")
    p.add_argument("--train-model", default="densenet-bc-100-12")
    p.add_argument("--train-batch", type=int, default=64)
    p.add_argument("--md", required=True)
    p.add_argument("--json", required=True)
    a = p.parse_args(argv)
    variants = (("tuned (this run's tune)", load(a.train_tuned)), ("bounds checks off (DENSENET_WGSL_DISABLE_ROBUSTNESS=1)", load(a.train_norobust)))
    merged = build(load(a.train), load(a.inference), load(a.torch_eager), load(a.torch_compile), load(a.logits), a.train_model, a.train_batch, variants)
    # Only the summaries: the per-op rows stay in the profile files.
    merged["profiles"] = {}
    for kind, path in (("train", a.profile_train), ("inference", a.profile_inference)):
        if path:
            d = load(path)
            merged["profiles"][kind] = {key: d.get(key) for key in ("header", "byPhase", "byRole")} if isinstance(d, dict) else d
    if not merged["adapter"] and a.info and os.path.exists(a.info):
        with open(a.info) as f:
            fields = dict(l.strip().split(": ", 1) for l in f if l.strip().startswith(("adapter: ", "backend: ")))
        if "adapter" in fields:
            merged["adapter"] = {"name": fields["adapter"], "backend": fields.get("backend", "?"), "driver": "?"}
    text = markdown(merged)
    with open(a.md, "w") as f:
        f.write(text)
    with open(a.json, "w") as f:
        json.dump(merged, f, indent=2)
    print(text, end="")


if __name__ == "__main__":
    main()
