"""GPU smoke test: a tiny random Qwen2-VL-style model, 30 SFT steps, 30 DPO steps, a merge.

Run on a machine with a CUDA GPU, torch, transformers >= 4.57, peft and tokenizers:
    cd trainer && python tests/gpu_smoke.py
Asserts that the SFT and DPO losses fall, that the adapter reloads with PEFT and that the merged
model loads; prints one JSON line with the numbers at the end. Also runs on CPU (slowly) with
--cpu, which tests/test_torch.py uses.
"""

import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from drag_trainer import cli, tiny  # noqa: E402


def losses(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(l)["loss"] for l in handle if l.strip()]


def main(steps=30, cpu=False):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    if not cpu and not torch.cuda.is_available():
        raise SystemExit("gpu_smoke: no CUDA GPU visible (use --cpu to run it slowly on the CPU)")
    if cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    work = tempfile.mkdtemp(prefix="drag-smoke-")
    model = tiny.build(os.path.join(work, "tiny-model"))
    sft_rows, dpo_rows = tiny.synthetic_rows(64)
    sft = tiny.write_jsonl(os.path.join(work, "trl_sft_train.jsonl"), sft_rows)
    dpo = tiny.write_jsonl(os.path.join(work, "trl_dpo_train.jsonl"), dpo_rows)
    common = ["--model", model, "--max-steps", str(steps), "--logging-steps", "1", "--batch-size", "8", "--grad-accum", "1", "--save-steps", "10", "--no-gradient-checkpointing", "--lora-r", "8", "--seed", "1"]
    assert cli.main(["sft", "--train-data", sft, "--output-dir", os.path.join(work, "sft"), "--lr", "3e-3", "--mask-strategy", "search-only", "--weight-scheme", "rank-score", *common]) == 0
    sft_losses = losses(os.path.join(work, "sft", "trainer_log.jsonl"))
    assert sum(sft_losses[-5:]) / 5 < 0.7 * sum(sft_losses[:5]) / 5, f"SFT loss did not fall: {sft_losses}"
    assert os.path.exists(os.path.join(work, "sft", "final", "adapter_config.json"))
    assert len([d for d in os.listdir(os.path.join(work, "sft")) if d.startswith("checkpoint-")]) == min(3, steps // 10)
    with open(os.path.join(work, "sft", "status.json"), encoding="utf-8") as handle:
        assert json.load(handle)["state"] == "succeeded"

    assert cli.main(["dpo", "--train-data", dpo, "--output-dir", os.path.join(work, "dpo"), "--lr", "3e-3", "--beta", "0.5", *common]) == 0
    dpo_losses = losses(os.path.join(work, "dpo", "trainer_log.jsonl"))
    assert abs(dpo_losses[0] - 0.6931) < 0.05, f"DPO must start at ln 2 (reference = policy): {dpo_losses[0]}"
    assert sum(dpo_losses[-5:]) / 5 < sum(dpo_losses[:5]) / 5 - 0.05, f"DPO loss did not fall: {dpo_losses}"

    base = AutoModelForImageTextToText.from_pretrained(model)
    reloaded = PeftModel.from_pretrained(base, os.path.join(work, "sft", "final"))
    n_lora = sum(1 for n, _ in reloaded.named_parameters() if "lora_" in n)
    assert n_lora > 0, "the adapter reloaded without LoRA weights"
    merged_dir = os.path.join(work, "merged")
    assert cli.main(["merge", "--adapter-path", os.path.join(work, "sft", "final"), "--output-path", merged_dir, "--model", model]) == 0
    merged = AutoModelForImageTextToText.from_pretrained(merged_dir)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        a = reloaded.eval()(input_ids=ids).logits
        b = merged.eval()(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-3), "merged model differs from base + adapter"
    result = {"sft_loss_first": sft_losses[0], "sft_loss_last": sft_losses[-1], "dpo_loss_first": dpo_losses[0], "dpo_loss_last": dpo_losses[-1], "lora_tensors": n_lora, "device": "cpu" if cpu else torch.cuda.get_device_name(0), "ok": True}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(cpu="--cpu" in sys.argv)
