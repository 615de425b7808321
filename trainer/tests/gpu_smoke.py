"""GPU smoke test: a tiny random Qwen2-VL-style model through every trainer path.

Run on a machine with a CUDA GPU, torch, transformers >= 4.57, peft and tokenizers:
    cd trainer && python tests/gpu_smoke.py
Phases, each run even when an earlier one failed (so one GPU session shows every problem):
  sft       30 SFT steps (search-only mask, rank-score weights): the loss falls, checkpoints
            rotate, final/ holds a PEFT adapter, status.json says succeeded;
  dpo       30 DPO steps: the first loss is ln 2 (reference = policy) and the loss falls;
  dpo_sft   DPO continuing the SFT adapter (--sft-adapter);
  merge     the adapter reloads with PEFT; the merged model's logits match base + adapter far
            more closely than they match the bare base model;
  images    SFT with --images: page images through a Qwen2-VL processor, image tokens never learned;
  options   gradient checkpointing (the default), --grad-accum 2, --val-data, --tune-mlp (the
            merger is saved with the adapter);
  cancel    SIGTERM to a running trainer: exit 143 and status.json says cancelled;
  dpo_sft_ckpt  DPO from the SFT adapter with gradient checkpointing (the default): starts at ln 2,
            peak GPU memory reported beside the dpo_sft phase's (which runs without);
  resume    12 SFT steps straight, and again stopped by SIGUSR1 after step 5 (exit 75, status
            preempted, a complete checkpoint-6) then continued with --resume auto: the losses after
            the checkpoint match the straight run's within a small tolerance; TensorBoard event
            files are written when tensorboard is installed;
  torchrun  torchrun --nproc_per_node 2 on the CPU (gloo): 9 batches over 2 ranks (the tail batch
            left out), --grad-accum 2 with no_sync; stopped through the save-and-stop request file
            (status preempted, a checkpoint written by rank 0), then --resume auto to the end: one
            log line per step, written once.
Prints one JSON line at the end; exit 1 if any phase failed. --only=a,b runs those phases (torchrun
runs only when named). --arch=qwen3_vl builds a tiny Qwen3-VL (DRAG's default model family:
interleaved M-RoPE, deep-stack vision merger) instead of Qwen2-VL. Also runs on CPU (slowly) with
--cpu, which tests/test_torch.py uses.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from drag_trainer import cli, tiny  # noqa: E402


def losses(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(l)["loss"] for l in handle if l.strip()]


def mean(xs):
    return sum(xs) / len(xs)


def read_status(out_dir):
    with open(os.path.join(out_dir, "status.json"), encoding="utf-8") as handle:
        return json.load(handle)


def main(steps=30, cpu=False, only=None, arch="qwen2_vl"):
    import torch

    if not cpu and not torch.cuda.is_available():
        raise SystemExit("gpu_smoke: no CUDA GPU visible (use --cpu to run it slowly on the CPU)")
    if cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    work = tempfile.mkdtemp(prefix="drag-smoke-")
    model = tiny.build(os.path.join(work, "tiny-model"), arch=arch, head_dim=16 if arch == "qwen2_vl" else 32)
    sft_rows, dpo_rows = tiny.synthetic_rows(64)
    sft = tiny.write_jsonl(os.path.join(work, "trl_sft_train.jsonl"), sft_rows)
    dpo = tiny.write_jsonl(os.path.join(work, "trl_dpo_train.jsonl"), dpo_rows)

    def common(n=steps):
        return [
            "--model",
            model,
            "--max-steps",
            str(n),
            "--logging-steps",
            "1",
            "--batch-size",
            "8",
            "--grad-accum",
            "1",
            "--save-steps",
            "10",
            "--no-gradient-checkpointing",
            "--lora-r",
            "8",
            "--seed",
            "1",
        ]

    result = {"device": "cpu" if cpu else torch.cuda.get_device_name(0), "arch": arch, "phases": {}}

    def phase_sft():
        assert (
            cli.main(
                [
                    "sft",
                    "--train-data",
                    sft,
                    "--output-dir",
                    os.path.join(work, "sft"),
                    "--lr",
                    "3e-3",
                    "--mask-strategy",
                    "search-only",
                    "--weight-scheme",
                    "rank-score",
                    *common(),
                ]
            )
            == 0
        )
        ls = losses(os.path.join(work, "sft", "trainer_log.jsonl"))
        assert mean(ls[-5:]) < 0.8 * mean(ls[:5]), f"SFT loss did not fall: {ls}"
        assert os.path.exists(os.path.join(work, "sft", "final", "adapter_config.json"))
        ckpts = [d for d in os.listdir(os.path.join(work, "sft")) if d.startswith("checkpoint-")]
        assert len(ckpts) == min(3, steps // 10), f"checkpoints: {ckpts}"
        assert read_status(os.path.join(work, "sft"))["state"] == "succeeded"
        return {"loss_first": ls[0], "loss_last": ls[-1]}

    def phase_dpo():
        assert (
            cli.main(
                [
                    "dpo",
                    "--train-data",
                    dpo,
                    "--output-dir",
                    os.path.join(work, "dpo"),
                    "--lr",
                    "3e-3",
                    "--beta",
                    "0.5",
                    *common(),
                ]
            )
            == 0
        )
        ls = losses(os.path.join(work, "dpo", "trainer_log.jsonl"))
        assert abs(ls[0] - 0.6931) < 0.01, f"DPO must start at ln 2 (reference = policy): {ls[0]}"
        assert mean(ls[-5:]) < mean(ls[:5]) - 0.05, f"DPO loss did not fall: {ls}"
        return {"loss_first": ls[0], "loss_last": ls[-1]}

    def peak_memory():
        if cpu:
            return None
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)

    def reset_peak():
        if not cpu:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def phase_dpo_sft(checkpointing=False):
        adapter = os.path.join(work, "sft", "final")
        assert os.path.exists(adapter), "needs the sft phase's adapter"
        out = os.path.join(work, "dpo-sft-ckpt" if checkpointing else "dpo-sft")
        args = [a for a in common(6) if not (checkpointing and a == "--no-gradient-checkpointing")]
        reset_peak()
        assert (
            cli.main(["dpo", "--train-data", dpo, "--output-dir", out, "--lr", "1e-3", "--sft-adapter", adapter, *args])
            == 0
        )
        ls = losses(os.path.join(out, "trainer_log.jsonl"))
        assert abs(ls[0] - 0.6931) < 0.01, f"DPO from an SFT adapter must also start at ln 2: {ls[0]}"
        return {"loss_first": ls[0], "loss_last": ls[-1], "peak_mib": peak_memory()}

    def phase_resume():
        import importlib.util

        from drag_trainer import train

        def sft_run(out, extra=()):
            return cli.main(
                [
                    "sft",
                    "--train-data",
                    sft,
                    "--output-dir",
                    out,
                    "--lr",
                    "3e-3",
                    "--weight-scheme",
                    "rank-score",
                    *common(12),
                    "--save-steps",
                    "4",
                    "--batch-size",
                    "4",
                    "--grad-accum",
                    "2",
                    "--lora-dropout",
                    "0.1",
                    *extra,
                ]
            )

        straight = os.path.join(work, "resume-straight")
        assert sft_run(straight) == 0
        stopped = os.path.join(work, "resume-stopped")
        original = train.TrainLog.log

        def log_then_signal(self, step, *a, **k):
            record = original(self, step, *a, **k)
            if step == 5:
                os.kill(os.getpid(), signal.SIGUSR1)  # as SLURM's --signal=USR1@N would, mid-run
            return record

        train.TrainLog.log = log_then_signal
        try:
            rc = sft_run(stopped)
        finally:
            train.TrainLog.log = original
        assert rc == 75, f"exit status after SIGUSR1: {rc}"
        assert read_status(stopped)["state"] == "preempted", read_status(stopped)
        assert os.path.exists(os.path.join(stopped, "checkpoint-6", "trainer_state.json")), os.listdir(stopped)
        assert sft_run(stopped, ["--resume", "auto"]) == 0
        a, b = losses(os.path.join(straight, "trainer_log.jsonl")), losses(os.path.join(stopped, "trainer_log.jsonl"))
        assert len(a) == len(b) == 12, (a, b)
        worst = max(abs(x - y) / max(1e-6, abs(x)) for x, y in zip(a[6:], b[6:]))
        assert worst < (1e-4 if cpu else 0.02), (
            f"resumed losses differ from the straight run by {worst:.2%}: {a} vs {b}"
        )
        events = [f for f in os.listdir(straight) if f.startswith("events.out.tfevents")]
        if importlib.util.find_spec("tensorboard") is not None:
            assert events, f"tensorboard is installed but no event file in {os.listdir(straight)}"
        return {
            "straight_last": a[-1],
            "resumed_last": b[-1],
            "worst_relative_difference": worst,
            "tensorboard_files": len(events),
        }

    def phase_torchrun():
        out = os.path.join(work, "torchrun")
        data = tiny.write_jsonl(os.path.join(work, "trl_sft_68.jsonl"), tiny.synthetic_rows(68)[0])
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29533",
            "-m",
            "drag_trainer",
            "sft",
            "--train-data",
            data,
            "--output-dir",
            out,
            "--lr",
            "3e-3",
            "--epochs",
            "20",
            "--model",
            model,
            "--logging-steps",
            "1",
            "--batch-size",
            "8",
            "--grad-accum",
            "2",
            "--save-steps",
            "3",
            "--no-gradient-checkpointing",
            "--lora-r",
            "8",
            "--seed",
            "1",
            "--report-to",
            "none",
        ]
        env = {**os.environ, "PYTHONPATH": os.path.join(HERE, ".."), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "2"}
        # First run: stopped through the request file (what a SLURM batch script's USR1 trap writes, since
        # torchrun itself dies of SIGUSR1), as soon as the trainer has started its log.
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        log = os.path.join(out, "trainer_log.jsonl")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not os.path.exists(log):
            time.sleep(0.05)
        open(os.path.join(out, "save-and-stop"), "w").close()
        stderr = proc.communicate(timeout=300)[1]
        assert proc.returncode != 0, f"the run ended before the request was seen: {stderr[-2000:]}"
        assert "1 of 9 batches left out" in stderr, stderr[-2000:]
        state = read_status(out)
        assert state["state"] == "preempted", (state, stderr[-3000:])
        stopped_at = state["step"]
        assert os.path.exists(os.path.join(out, f"checkpoint-{stopped_at}", "trainer_state.json")), os.listdir(out)
        assert not os.path.exists(os.path.join(out, "save-and-stop"))
        # Second run: --resume auto finishes the 40 steps (68 rows / 8 = 9 batches; 2 ranks get 4 each,
        # one left out; 2 steps of 2 micro-batches per epoch).
        done = subprocess.run([*cmd, "--resume", "auto"], env=env, capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, f"torchrun --resume auto exit {done.returncode}: {done.stderr[-3000:]}"
        with open(log, encoding="utf-8") as handle:
            steps = [json.loads(l)["current_steps"] for l in handle if l.strip()]
        assert steps == list(range(1, 41)), f"one line per step, written once: {steps}"
        assert read_status(out)["state"] == "succeeded"
        return {"stopped_at": stopped_at, "steps": len(steps), "loss_last": losses(log)[-1]}

    def phase_merge():
        from peft import PeftModel
        from transformers import AutoModelForImageTextToText

        adapter = os.path.join(work, "sft", "final")
        assert os.path.exists(adapter), "needs the sft phase's adapter"
        f32 = {"dtype": torch.float32}
        reloaded = PeftModel.from_pretrained(AutoModelForImageTextToText.from_pretrained(model, **f32), adapter)
        n_lora = sum(1 for n, _ in reloaded.named_parameters() if "lora_" in n)
        assert n_lora > 0, "the adapter reloaded without LoRA weights"
        merged_dir = os.path.join(work, "merged")
        assert cli.main(["merge", "--adapter-path", adapter, "--output-path", merged_dir, "--model", model]) == 0
        merged = AutoModelForImageTextToText.from_pretrained(merged_dir, **f32)
        base = AutoModelForImageTextToText.from_pretrained(model, **f32)
        ids = torch.tensor([[1, 12, 13, 14, 15, 16]])
        with torch.no_grad():
            a = reloaded.eval()(input_ids=ids).logits
            b = merged.eval()(input_ids=ids).logits
            c = base.eval()(input_ids=ids).logits
        merge_err, adapter_effect = float((a - b).abs().max()), float((a - c).abs().max())
        # The merge may run in bf16 on a GPU, so exact equality is not expected: the merged model must be
        # much closer to base + adapter than the adapter's own effect on the logits.
        assert adapter_effect > 1e-3, f"the adapter changes nothing ({adapter_effect})"
        assert merge_err < 0.1 * adapter_effect, (
            f"merged model differs from base + adapter: {merge_err} vs adapter effect {adapter_effect}"
        )
        return {"lora_tensors": n_lora, "merge_max_abs_err": merge_err, "adapter_max_abs_effect": adapter_effect}

    pixels = ["--min-pixels", str(28 * 28 * 4), "--max-pixels", str(28 * 28 * 16)]
    image_files = {}

    def image_data():
        """The processor beside the tiny model and 16 rows with page images (train) and 4 (val), made once."""
        if not image_files:
            tiny.add_processor(model)
            rows = tiny.image_rows(os.path.join(work, "pages"), 16)
            image_files["train"] = tiny.write_jsonl(os.path.join(work, "trl_sft_images.jsonl"), rows)
            image_files["val"] = tiny.write_jsonl(os.path.join(work, "trl_sft_images_val.jsonl"), rows[:4])
        return image_files

    def phase_images():
        data = image_data()["train"]
        assert (
            cli.main(
                [
                    "sft",
                    "--train-data",
                    data,
                    "--output-dir",
                    os.path.join(work, "sft-images"),
                    "--images",
                    "--mask-strategy",
                    "assistant",
                    "--lr",
                    "3e-3",
                    *pixels,
                    *common(6),
                ]
            )
            == 0
        )
        ls = losses(os.path.join(work, "sft-images", "trainer_log.jsonl"))
        assert all(l == l and l < 1e4 for l in ls), f"image SFT losses: {ls}"
        return {"loss_first": ls[0], "loss_last": ls[-1]}

    def phase_options():
        # What a real run uses but the phases above switch off: gradient checkpointing (the default),
        # gradient accumulation, a validation set, and the vision-language merger trained beside LoRA.
        files = image_data()
        out = os.path.join(work, "sft-options")
        args = [a for a in common(4) if a != "--no-gradient-checkpointing"]
        # argparse keeps the last of a repeated option: these come after the common ones.
        assert (
            cli.main(
                [
                    "sft",
                    "--train-data",
                    files["train"],
                    "--val-data",
                    files["val"],
                    "--output-dir",
                    out,
                    *args,
                    "--save-steps",
                    "2",
                    "--images",
                    "--tune-mlp",
                    "--grad-accum",
                    "2",
                    "--batch-size",
                    "4",
                    *pixels,
                ]
            )
            == 0
        )
        with open(os.path.join(out, "trainer_log.jsonl"), encoding="utf-8") as handle:
            logged = [json.loads(l) for l in handle if l.strip()]
        evals = [r["eval_loss"] for r in logged if r.get("eval_loss") is not None]
        assert len(evals) == 2, f"eval_loss every 2 steps: {logged}"
        from safetensors import safe_open

        with safe_open(os.path.join(out, "final", "adapter_model.safetensors"), "pt") as f:
            keys = list(f.keys())
        assert any("merger" in k for k in keys), f"--tune-mlp: the merger is not in the adapter ({len(keys)} tensors)"
        assert any("lora_" in k for k in keys)
        return {"eval_losses": evals, "adapter_tensors": len(keys)}

    def phase_cancel():
        out = os.path.join(work, "cancelled")
        cmd = [sys.executable, "-m", "drag_trainer", "sft", "--train-data", sft, "--output-dir", out, *common(100000)]
        env = {**os.environ, "PYTHONPATH": os.path.join(HERE, "..")}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        log = os.path.join(out, "trainer_log.jsonl")
        deadline = time.monotonic() + 300
        while (
            time.monotonic() < deadline
            and proc.poll() is None
            and not (os.path.exists(log) and os.path.getsize(log) > 0)
        ):
            time.sleep(0.2)
        assert proc.poll() is None, f"the trainer ended before it was cancelled: {proc.stderr.read()[-2000:]}"
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
        proc.stderr.close()
        state = read_status(out)
        assert rc == 143, f"exit code {rc} after SIGTERM"
        assert state["state"] == "cancelled", state
        return {"exit_code": rc, "state": state["state"]}

    phases = {
        "sft": phase_sft,
        "dpo": phase_dpo,
        "dpo_sft": phase_dpo_sft,
        "dpo_sft_ckpt": lambda: phase_dpo_sft(checkpointing=True),
        "merge": phase_merge,
        "images": phase_images,
        "options": phase_options,
        "cancel": phase_cancel,
        "resume": phase_resume,
        "torchrun": phase_torchrun,
    }
    for name, fn in phases.items():
        if (only and name not in only) or (not only and name == "torchrun"):
            continue  # torchrun runs on the CPU whatever the machine: its own check in gpu_checks.sh
        started = time.monotonic()
        try:
            result["phases"][name] = {"ok": True, **fn()}
        except BaseException as err:  # noqa: BLE001 - SystemExit from the trainer is a phase failure too
            traceback.print_exc()
            result["phases"][name] = {"ok": False, "error": f"{type(err).__name__}: {err}"[:2000]}
        result["phases"][name]["seconds"] = round(time.monotonic() - started, 1)
        print(f"gpu_smoke: {name}: {'ok' if result['phases'][name]['ok'] else 'FAILED'}", file=sys.stderr, flush=True)
    result["ok"] = all(p["ok"] for p in result["phases"].values())
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    picked = [a.split("=", 1)[1].split(",") for a in sys.argv[1:] if a.startswith("--only=")]
    archs = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--arch=")]
    sys.exit(
        0
        if main(cpu="--cpu" in sys.argv, only=picked[0] if picked else None, arch=archs[0] if archs else "qwen2_vl")[
            "ok"
        ]
        else 1
    )
