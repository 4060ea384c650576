#!/usr/bin/env python3
"""PyTorch side of the GPU harness (bench/gpu/run.sh): the same networks as `bench train` and
`bench inference` on the same card, and the oracle files for our DenseNet-121 logits.

  --mode eager    DenseNet-BC-100-12 training step at batch 64 (SGD, CUDA), with PyTorch's defaults
                  (TF32 convolutions allowed) and in strict float32; torchvision densenet121
                  (weights=None) inference at batch 1 and 32; with --oracle-dir also the oracle files.
  --mode compile  the same under torch.compile (each part in try/except: a failure is recorded).

Timing: warm-up runs, then each timed run alone between torch.cuda.synchronize() calls; median.
Inference times go from host images to host logits (copy in, forward, copy out), as ours do.
Writes one JSON file (--out). Needs torch, torchvision, numpy; safetensors for --oracle-dir.
"""
import argparse
import json
import math
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BC100_PARAMETERS = 769_162  # DenseNet-BC (L=100, k=12) on CIFAR-10, as our preset densenet-bc-100-12


class Bottleneck(nn.Module):
    """BN-ReLU-conv1x1 (4k) then BN-ReLU-conv3x3 (k); the k new channels are concatenated."""

    def __init__(self, channels, growth):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, 4 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.conv1(F.relu(self.norm1(x)))
        y = self.conv2(F.relu(self.norm2(y)))
        return torch.cat([x, y], 1)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 to compression * channels, then 2x2 average pool."""

    def __init__(self, channels, out_channels):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, out_channels, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.norm(x))), 2)


class DenseNetBC(nn.Module):
    """DenseNet-BC for CIFAR (Huang et al. 2017): 3x3 stem of 2k channels, three dense blocks of
    (depth - 4) / 6 bottleneck layers, compression 0.5, BN-ReLU-global pool-linear head."""

    def __init__(self, depth=100, growth=12, compression=0.5, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        channels = 2 * growth
        layers = [nn.Conv2d(3, channels, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(n):
                layers.append(Bottleneck(channels, growth))
                channels += growth
            if block < 2:
                out = int(math.floor(channels * compression))
                layers.append(Transition(channels, out))
                channels = out
        self.features = nn.Sequential(*layers)
        self.norm = nn.BatchNorm2d(channels)
        self.classifier = nn.Linear(channels, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.relu(self.norm(self.features(x)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def set_precision(tf32):
    """tf32=True: PyTorch's defaults (cuDNN convolutions may use TF32; matrix products stay float32);
    tf32=False: strict float32 everywhere, the arithmetic our engine does."""
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = False


def timed(fn, warmup, reps):
    """Median, min and max seconds of `reps` runs of fn after `warmup` untimed ones, each synchronized."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        samples.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples), "reps": reps, "warmup": warmup}


def train_step_bench(compile_model, tf32, batch, warmup, steps, seed=1):
    set_precision(tf32)
    torch.manual_seed(seed)
    model = DenseNetBC().cuda().train()
    count = parameter_count(model)
    assert count == BC100_PARAMETERS, f"DenseNet-BC-100-12 has {count} parameters, expected {BC100_PARAMETERS}"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    step_model = torch.compile(model) if compile_model else model
    images = torch.randn(batch, 3, 32, 32, device="cuda")
    labels = torch.randint(0, 10, (batch,), device="cuda")
    losses = []

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(step_model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # read back, as ours reads its loss every step

    t0 = time.perf_counter()
    step()
    first_step_s = time.perf_counter() - t0
    t = timed(step, warmup, steps)
    return {"model": "densenet-bc-100-12", "batch": batch, "parameters": count, "tf32": tf32, "compiled": compile_model,
            "first_step_s": first_step_s, **t, "images_per_sec": batch / t["median_s"], "first_loss": losses[0], "last_loss": losses[-1]}


def densenet121(seed):
    import torchvision
    torch.manual_seed(seed)
    return torchvision.models.densenet121(weights=None)


def randomize_batch_norm(model, seed):
    """Non-trivial BN statistics and affine parameters, so that the oracle checks how they are applied
    (a fresh model's mean 0 / var 1 / weight 1 / bias 0 would hide mistakes there)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            elif isinstance(m, nn.Linear):
                m.bias.copy_(torch.randn(m.out_features, generator=g) * 0.1)


def inference_bench(compile_model, tf32, batches, warmup, reps, seed=2):
    set_precision(tf32)
    model = densenet121(seed).cuda().eval()
    run_model = torch.compile(model) if compile_model else model
    rows = []
    for batch in batches:
        host = torch.randn(batch, 3, 224, 224).pin_memory()

        def run():
            with torch.no_grad():
                return run_model(host.cuda(non_blocking=True)).cpu()

        t = timed(run, warmup, reps)
        rows.append({"model": "densenet121", "batch": batch, "tf32": tf32, "compiled": compile_model, **t, "images_per_sec": batch / t["median_s"]})
    return rows


def write_oracle(directory, images, seed=3):
    """densenet121 with random weights as safetensors, a fixed input batch and the reference logits:
    float64 on the CPU (the reference) and float32 on CUDA without TF32 (what float32 rounding gives)."""
    from safetensors.torch import save_file
    import os
    os.makedirs(directory, exist_ok=True)
    model = densenet121(seed).eval()
    randomize_batch_norm(model, seed)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(directory, "densenet121.safetensors"))
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(images, 3, 224, 224, generator=g)
    np.save(os.path.join(directory, "input.npy"), x.numpy().astype(np.float32))
    with torch.no_grad():
        ref = model.double()(x.double()).numpy()
        np.save(os.path.join(directory, "torch_cpu_f64.npy"), ref)
        set_precision(False)
        cuda = model.float().cuda()(x.cuda()).cpu().numpy()
        np.save(os.path.join(directory, "torch_cuda_f32.npy"), cuda.astype(np.float32))
    return {"directory": directory, "images": images, "logits_shape": list(ref.shape),
            "max_abs_ref_logit": float(np.abs(ref).max()), "cuda_f32_vs_f64_max_abs": float(np.abs(cuda - ref).max())}


def attempt(what, fn, log):
    """Runs one measurement; a failure becomes {"error": ...} and the rest goes on."""
    t0 = time.perf_counter()
    try:
        result = fn()
        log(f"{what}: done in {time.perf_counter() - t0:.1f} s")
        return result
    except Exception as e:  # noqa: BLE001: record any failure (torch.compile offline, OOM) and go on
        log(f"{what}: FAILED after {time.perf_counter() - t0:.1f} s: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return {"error": f"{type(e).__name__}: {e}"[:2000]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["eager", "compile"], default="eager")
    p.add_argument("--out", required=True, help="JSON results file")
    p.add_argument("--oracle-dir", help="eager only: write densenet121.safetensors, input.npy and reference logits here")
    p.add_argument("--oracle-images", type=int, default=4)
    p.add_argument("--train-batch", type=int, default=64)
    p.add_argument("--train-warmup", type=int, default=5)
    p.add_argument("--train-steps", type=int, default=30)
    p.add_argument("--infer-batches", default="1,32")
    p.add_argument("--infer-warmup", type=int, default=3)
    p.add_argument("--infer-reps", type=int, default=20)
    a = p.parse_args(argv)

    def log(line):
        print(f"[torch_bench {a.mode}] {line}", flush=True)

    if not torch.cuda.is_available():
        sys.exit("torch_bench: CUDA is not available (this script measures PyTorch on the GPU)")
    batches = [int(b) for b in a.infer_batches.split(",")]
    result = {"mode": a.mode, "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
              "device": torch.cuda.get_device_name(0), "cudnn_benchmark": torch.backends.cudnn.benchmark,
              "timing": "wall clock per run between torch.cuda.synchronize() calls, median after warm-up; "
                        "training steps read the loss back; inference from pinned host images to host logits"}
    log(f"{result['device']}, torch {result['torch']}, CUDA {result['cuda']}, cuDNN {result['cudnn']}")
    compiled = a.mode == "compile"

    def save():
        """Written after every part, so that a run stopped at its time limit keeps what it measured."""
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)

    if a.oracle_dir and not compiled:
        result["oracle"] = attempt("oracle files", lambda: write_oracle(a.oracle_dir, a.oracle_images), log)
        save()
    result["train"] = []
    for tf32 in ([True, False] if not compiled else [True]):
        result["train"].append(attempt(f"train BC-100-12 b{a.train_batch} tf32={tf32}", lambda tf32=tf32: train_step_bench(compiled, tf32, a.train_batch, a.train_warmup, a.train_steps), log))
        save()
    result["inference"] = []
    for tf32 in ([True, False] if not compiled else [True]):
        rows = attempt(f"inference densenet121 tf32={tf32}", lambda tf32=tf32: inference_bench(compiled, tf32, batches, a.infer_warmup, a.infer_reps), log)
        result["inference"] += rows if isinstance(rows, list) else [rows]
        save()
    for row in result["train"] + result["inference"]:
        if "images_per_sec" in row:
            log(f"{row['model']} batch {row['batch']} tf32={row['tf32']} compiled={row['compiled']}: {row['images_per_sec']:.1f} images/s (median {row['median_s'] * 1000:.2f} ms)")
    log(f"wrote {a.out}")


if __name__ == "__main__":
    main()
