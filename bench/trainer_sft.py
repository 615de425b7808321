"""SFT throughput on a GPU: our dynamic padding + length grouping vs DRAG's pad-to-max-length.

    python bench/trainer_sft.py [--steps 40] [--max-length 1024] [--hidden 2048] [--layers 8]

Same random Qwen2-VL-style model (trainer/drag_trainer/tiny.py, by default about 0.3 B parameters
with head_dim 128, big enough that a step's time follows its token count), same samples (lengths
spread like real trajectories: mostly short, a few long), same batch size, same loss code; the
only difference is how batches are formed. Each way runs one untimed pass first (so every batch
shape has been seen once, as after an epoch of real training), then the two are timed in turn,
twice. Throughput counts real (non-padding) tokens per second. Last line: JSON with both numbers
and `ratio` = ours / baseline. Needs a CUDA GPU.
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "trainer"))

from drag_trainer import tiny  # noqa: E402
from drag_trainer.collate import length_grouped_order, pad_batch  # noqa: E402
from drag_trainer.masks import IGNORE_INDEX  # noqa: E402


def run(model, samples, batches, pad_id, max_length, device):
    import torch

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    real = 0
    torch.cuda.synchronize()
    start = time.perf_counter()
    for b in batches:
        batch = pad_batch([samples[i] for i in b], pad_id, multiple_of=8, max_length=max_length)
        t = {k: torch.tensor(v, device=device) for k, v in batch.items()}
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).logits[:, :-1]
        labels = t["labels"][:, 1:]
        mask = labels != IGNORE_INDEX
        loss = torch.nn.functional.cross_entropy(logits[mask].float(), labels[mask])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        real += int(t["attention_mask"].sum())
    torch.cuda.synchronize()
    return real / (time.perf_counter() - start)


def main():
    import torch
    from transformers import AutoModelForImageTextToText

    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("trainer_sft bench: needs a CUDA GPU")
    device = torch.device("cuda")
    path = tiny.build(os.path.join(tempfile.mkdtemp(), "tiny"), hidden=args.hidden, layers=args.layers, head_dim=128)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.bfloat16).to(device)
    rng = random.Random(0)
    n = args.steps * args.batch_size
    # Lengths like real SFT samples: a system prompt and a question (~300-600 tokens), few long ones.
    lengths = [min(args.max_length, int(rng.lognormvariate(6.0, 0.35))) for _ in range(n)]
    samples = [
        {
            "input_ids": [rng.randrange(20, 100) for _ in range(L)],
            "labels": [IGNORE_INDEX] * (L - 12) + [rng.randrange(20, 100) for _ in range(12)],
        }
        for L in lengths
    ]
    pad_id = 0
    ours_batches = length_grouped_order(lengths, args.batch_size, seed=1)
    base_batches = [list(range(i, i + args.batch_size)) for i in range(0, n, args.batch_size)]
    run(model, samples, base_batches, pad_id, args.max_length, device)  # untimed: warm-up
    run(model, samples, ours_batches, pad_id, None, device)  # untimed: every batch shape once
    base_runs, ours_runs = [], []
    for _ in range(args.repeats):
        base_runs.append(run(model, samples, base_batches, pad_id, args.max_length, device))
        ours_runs.append(run(model, samples, ours_batches, pad_id, None, device))
    baseline, ours = sum(base_runs) / len(base_runs), sum(ours_runs) / len(ours_runs)
    padded = sum(
        len(pad_batch([samples[i] for i in b], pad_id, multiple_of=8)["input_ids"][0]) * len(b) for b in ours_batches
    )
    params = sum(p.numel() for p in model.parameters())
    print(
        f"tokens/s: ours {ours:,.0f}, pad-to-{args.max_length} baseline {baseline:,.0f} "
        f"on {torch.cuda.get_device_name(0)}",
        file=sys.stderr,
    )
    print(json.dumps({"bench": "trainer_sft", "ours_tokens_per_s": round(ours),
                      "baseline_tokens_per_s": round(baseline),
                      "runs_ours": [round(x) for x in ours_runs], "runs_baseline": [round(x) for x in base_runs],
                      "mean_length": sum(lengths) / n, "max_length": args.max_length,
                      "padding_ours": round(1 - sum(lengths) / padded, 3),
                      "padding_baseline": round(1 - sum(lengths) / (n * args.max_length), 3), "params": params,
                      "device": torch.cuda.get_device_name(0), "ratio": round(ours / baseline, 3)}))


if __name__ == "__main__":
    main()
