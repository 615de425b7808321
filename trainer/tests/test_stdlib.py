"""Trainer tests that need only the standard library (run in CI with Debian's python3)."""

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from drag_trainer import cli  # noqa: E402
from drag_trainer.collate import length_grouped_order, pad_batch, padding_fraction  # noqa: E402
from drag_trainer.data import check_file, check_record, load_examples  # noqa: E402
from drag_trainer.envcheck import report, version_at_least  # noqa: E402
from drag_trainer.masks import IGNORE_INDEX, assistant_spans, labels_from_offsets, learned_fraction, learned_spans, tag_spans  # noqa: E402
from drag_trainer.trainlog import TrainLog, fmt_duration  # noqa: E402
from drag_trainer.weights import sample_weight, weighted_mean  # noqa: E402
from fakes import FakeTokenizer, chatml  # noqa: E402


def learned_text(text, strategy, messages=None):
    """Renders, masks and returns the characters of the learned tokens, joined."""
    tok = FakeTokenizer()
    full, turns = assistant_spans(lambda m, g: chatml(m, g), messages)
    assert full == text or text is None
    spans, fell_back = learned_spans(strategy, full, turns)
    enc = tok(full)
    labels = labels_from_offsets(enc["input_ids"], enc["offset_mapping"], spans)
    return tok.decode_span(full, enc["offset_mapping"], labels), fell_back, labels


DRAG_SFT = [{"role": "user", "content": "<question>What was revenue in 2021?</question>"},
            {"role": "assistant", "content": "<think>need the income statement</think>\n<search>revenue 2021</search>"}]
TRL_SFT = [{"role": "system", "content": "You search documents."},
           {"role": "user", "content": "What was revenue in 2021?"},
           {"role": "assistant", "content": "<think>look it up</think>", "tool_calls": [{"type": "function", "function": {"name": "search_documents", "arguments": {"query": "revenue 2021"}}}]}]


class MaskTests(unittest.TestCase):
    def test_assistant_span_is_the_turn_and_its_end_marker(self):
        text, fell_back, _ = learned_text(None, "assistant", DRAG_SFT)
        self.assertEqual(text, "<think>need the income statement</think>\n<search>revenue 2021</search><|im_end|>\n")
        self.assertFalse(fell_back)

    def test_search_only_learns_the_search_tags_and_query_only(self):
        text, _, _ = learned_text(None, "search-only", DRAG_SFT)
        self.assertEqual(text, "<search>revenue 2021</search>")

    def test_search_think_adds_the_reasoning(self):
        text, _, _ = learned_text(None, "search-think", DRAG_SFT)
        self.assertEqual(text, "<think>need the income statement</think><search>revenue 2021</search>")

    def test_tool_calls_count_as_searches(self):
        text, fell_back, _ = learned_text(None, "search-only", TRL_SFT)
        self.assertFalse(fell_back)
        self.assertEqual(text, '<tool_call>\n{"name": "search_documents", "arguments": {"query": "revenue 2021"}}\n</tool_call>')

    def test_none_learns_every_token_including_the_prompt(self):
        _, _, labels = learned_text(None, "none", DRAG_SFT)
        self.assertNotIn(IGNORE_INDEX, labels)

    def test_no_search_span_falls_back_to_the_assistant_turn(self):
        msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "The answer is 42."}]
        text, fell_back, _ = learned_text(None, "search-only", msgs)
        self.assertTrue(fell_back)
        self.assertEqual(text, "The answer is 42.<|im_end|>\n")

    def test_two_assistant_turns_are_both_learned_and_the_tool_result_is_not(self):
        msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<search>a</search>"},
                {"role": "tool", "content": "page 3 <search>not mine</search>"}, {"role": "assistant", "content": "<search>b</search>"}]
        text, _, _ = learned_text(None, "search-only", msgs)
        self.assertEqual(text, "<search>a</search><search>b</search>")

    def test_a_token_straddling_a_span_edge_is_learned(self):
        # offsets (0,5) and (5,10); span (3, 7) overlaps both tokens, span (10, 12) none.
        self.assertEqual(labels_from_offsets([1, 2, 3], [(0, 5), (5, 10), (10, 12)], [(3, 7)]), [1, 2, IGNORE_INDEX])

    def test_tokens_added_by_the_tokenizer_are_never_learned_unless_all_are(self):
        self.assertEqual(labels_from_offsets([0, 5], [(0, 0), (0, 3)], [(0, 3)]), [IGNORE_INDEX, 5])
        self.assertEqual(labels_from_offsets([0, 5], [(0, 0), (0, 3)], None), [0, 5])

    def test_unclosed_tag_runs_to_the_end_of_the_turn(self):
        self.assertEqual(tag_spans("xx<search>abc", (("<search>", "</search>"),), [(0, 13)]), [(2, 13)])

    def test_mismatched_lengths_and_unknown_strategy_are_errors(self):
        with self.assertRaises(ValueError):
            labels_from_offsets([1, 2], [(0, 1)], None)
        with self.assertRaises(ValueError):
            learned_spans("everything", "", [])

    def test_learned_fraction(self):
        self.assertAlmostEqual(learned_fraction([1, IGNORE_INDEX, 3, IGNORE_INDEX]), 0.5)


class WeightTests(unittest.TestCase):
    def test_zero_is_kept_as_zero(self):
        self.assertEqual(sample_weight("rank-score", {"rank_score": 0.0}), (0.0, False))
        self.assertEqual(sample_weight("rank-sq", {"rank_score": 0}), (0.0, False))

    def test_rank_score_then_best_rank_score(self):
        self.assertEqual(sample_weight("rank-score", {"rank_score": None, "best_rank_score": 2 / 3})[0], 2 / 3)
        self.assertAlmostEqual(sample_weight("rank-sq", {"rank_score": 2 / 3})[0], 4 / 9)

    def test_inv_effort_prefers_the_corrected_effort_score(self):
        meta = {"rank_score": 1.0, "cumulative_effort_score": 0.333, "effort_score_until_first_hit": 0.5}
        self.assertEqual(sample_weight("inv-effort", meta)[0], 0.5)
        self.assertEqual(sample_weight("inv-effort", {"cumulative_effort_score": 0.333})[0], 0.333)
        self.assertEqual(sample_weight("inv-effort", {"rank_score": 0.25})[0], 0.25)

    def test_binary_from_gt_rank_or_a_full_rank_score(self):
        self.assertEqual(sample_weight("binary", {"gt_rank": 1})[0], 1.0)
        self.assertEqual(sample_weight("binary", {"gt_rank": 2, "rank_score": 1.0})[0], 0.0)
        self.assertEqual(sample_weight("binary", {"rank_score": 1.0})[0], 1.0)
        self.assertEqual(sample_weight("binary", {"rank_score": 2 / 3})[0], 0.0)

    def test_missing_field_gives_one_and_is_counted(self):
        self.assertEqual(sample_weight("rank-score", {}), (1.0, True))
        self.assertEqual(sample_weight("none", {}), (1.0, False))

    def test_min_weight_floors(self):
        self.assertEqual(sample_weight("rank-score", {"rank_score": 0.0}, min_weight=0.1)[0], 0.1)

    def test_weighted_mean_divides_by_the_sum_of_weights(self):
        self.assertAlmostEqual(weighted_mean([2.0, 4.0], [1.0, 0.5]), (2 + 2) / 1.5)
        self.assertEqual(weighted_mean([2.0], [0.0]), 0.0)

    def test_unknown_scheme(self):
        with self.assertRaises(ValueError):
            sample_weight("rank", {})


class CollateTests(unittest.TestCase):
    def test_dynamic_padding_masks_the_padding(self):
        b = pad_batch([{"input_ids": [1, 2, 3], "labels": [IGNORE_INDEX, 2, 3]}, {"input_ids": [4]}], pad_id=0)
        self.assertEqual(b["input_ids"], [[1, 2, 3], [4, 0, 0]])
        self.assertEqual(b["attention_mask"], [[1, 1, 1], [1, 0, 0]])
        self.assertEqual(b["labels"], [[IGNORE_INDEX, 2, 3], [4, IGNORE_INDEX, IGNORE_INDEX]])

    def test_multiple_of_and_max_length_baseline(self):
        self.assertEqual(len(pad_batch([{"input_ids": [1] * 9}], 0, multiple_of=8)["input_ids"][0]), 16)
        baseline = pad_batch([{"input_ids": [1, 2]}], 0, max_length=6)
        self.assertEqual(baseline["input_ids"][0], [1, 2, 0, 0, 0, 0])
        self.assertAlmostEqual(padding_fraction(baseline), 4 / 6)

    def test_length_grouping_covers_every_sample_once_and_reduces_padding(self):
        lengths = [(i * 37) % 500 + 1 for i in range(400)]
        batches = length_grouped_order(lengths, 8, seed=1)
        self.assertEqual(sorted(i for b in batches for i in b), list(range(400)))
        grouped = sum(max(lengths[i] for i in b) * len(b) for b in batches)
        plain = sum(max(lengths[i] for i in range(s, min(400, s + 8))) * min(8, 400 - s) for s in range(0, 400, 8))
        self.assertLess(grouped, plain * 0.8)
        self.assertEqual(batches, length_grouped_order(lengths, 8, seed=1))
        self.assertNotEqual(batches, length_grouped_order(lengths, 8, seed=2))

    def test_image_token_types_padded_with_zero_and_filled_for_text_rows(self):
        b = pad_batch([{"input_ids": [1, 7, 7, 2], "mm_token_type_ids": [0, 1, 1, 0]}, {"input_ids": [3, 4]}], 0, multiple_of=8)
        self.assertEqual(b["mm_token_type_ids"], [[0, 1, 1, 0, 0, 0, 0, 0], [0] * 8])
        self.assertNotIn("mm_token_type_ids", pad_batch([{"input_ids": [1]}], 0))

    def test_empty_batch(self):
        with self.assertRaises(ValueError):
            pad_batch([], 0)


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as handle:
        for r in rows:
            handle.write(r if isinstance(r, str) else json.dumps(r))
            handle.write("\n")


class DataTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def test_check_data_names_line_and_field(self):
        path = os.path.join(self.dir, "sft.jsonl")
        write_jsonl(path, [{"messages": TRL_SFT}, "{not json", {"input": "q", "output": ""}, {"messages": [{"role": "robot", "content": "x"}]}, "", {"input": "q", "output": "<search>a</search>", "rank_score": 1.5}])
        ok, errors = check_file("sft", path)
        self.assertEqual(ok, 1)
        text = [str(e) for e in errors]
        self.assertTrue(any(t.startswith(f"{path}:2: invalid JSON") for t in text), text)
        self.assertIn(f"{path}:3: output: missing or not a non-empty string", text)
        self.assertIn(f"{path}:4: messages[0].role: must be one of system, user, assistant, tool (got 'robot')", text)
        self.assertIn(f"{path}:6: rank_score: must be a number in [0, 1] or null (got 1.5)", text)

    def test_dpo_shapes(self):
        trl = {"prompt": TRL_SFT[:2], "chosen": [TRL_SFT[2]], "rejected": [{"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "search_documents", "arguments": {"query": "x"}}}]}]}
        self.assertEqual(check_record("dpo", trl), [])
        self.assertEqual(check_record("dpo", {"prompt": "p", "chosen": "<search>a</search>", "rejected": "<search>b</search>"}), [])
        self.assertEqual(check_record("dpo", {"prompt": "p", "chosen": "<search>a</search>", "rejected": "<search>a</search>"}), [("rejected", "is the same as chosen: the pair teaches nothing")])
        share = {"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "function_call", "value": '{"name": "search_documents", "arguments": {"query": "a"}}'}, "rejected": {"from": "gpt", "value": "b"}}
        self.assertEqual(check_record("dpo", share), [])
        self.assertEqual(check_record("dpo", {"prompt": "p"}), [("chosen", "missing or not a non-empty string"), ("rejected", "missing or not a non-empty string")])

    def test_load_examples_normalises_every_shape_and_skips_bad_lines(self):
        path = os.path.join(self.dir, "mixed.jsonl")
        write_jsonl(path, [
            {"input": "<question>q</question>", "output": "<search>a</search>", "rank_score": 0.0, "question_id": "q1"},
            {"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": '{"name": "search_documents", "arguments": {"query": "a"}}'}], "system": "S", "tools": "[]"},
            {"messages": TRL_SFT, "images": ["pages/p1.png"]},
            {"input": 3},
        ])
        examples, errors = load_examples("sft", path)
        self.assertEqual(len(examples), 3)
        self.assertEqual(len(errors), 2)  # input and output of line 4
        self.assertEqual(examples[0].meta, {"rank_score": 0.0, "question_id": "q1"})
        self.assertEqual(examples[1].messages[0], {"role": "system", "content": "S"})
        self.assertEqual(examples[1].messages[2]["tool_calls"][0]["function"]["arguments"], {"query": "a"})
        self.assertEqual(examples[2].images, [os.path.join(self.dir, "pages/p1.png")])


class EncoderTests(unittest.TestCase):
    """The trainer's own encoding code (drag_trainer.train.Encoder) with the offset-producing fake tokenizer."""

    def encoder(self, max_length=4096):
        from argparse import Namespace

        from drag_trainer.train import Encoder

        return Encoder(FakeTokenizer(), None, Namespace(max_length=max_length, images=False))

    def test_sft_learns_only_the_tool_call_with_search_only(self):
        from drag_trainer.data import to_example

        enc = self.encoder()
        item = enc.sft(to_example("sft", {"messages": TRL_SFT}), "search-only")
        enc2 = FakeTokenizer()
        offsets = enc2(item["text"])["offset_mapping"]
        learned = "".join(item["text"][s:e] for (s, e), l in zip(offsets, item["labels"]) if l != IGNORE_INDEX)
        self.assertEqual(learned, '<tool_call>\n{"name": "search_documents", "arguments": {"query": "revenue 2021"}}\n</tool_call>')
        self.assertEqual(len(item["input_ids"]), len(item["labels"]))

    def test_truncation_is_counted_and_an_empty_sample_skipped(self):
        from drag_trainer.data import to_example

        enc = self.encoder(max_length=20)
        self.assertIsNone(enc.sft(to_example("sft", {"messages": TRL_SFT}), "search-only"))  # the search lies past token 20
        self.assertEqual((enc.truncated, enc.skipped), (1, 1))

    def test_dpo_rows_learn_the_completion_only(self):
        from drag_trainer.data import to_example

        enc = self.encoder()
        rows = enc.dpo(to_example("dpo", {"prompt": "p?", "chosen": "<search>good</search>", "rejected": "<search>bad</search>"}))
        tok = FakeTokenizer()
        texts = []
        for r in rows:
            offsets = tok(r["text"])["offset_mapping"]
            texts.append("".join(r["text"][s:e] for (s, e), l in zip(offsets, r["labels"]) if l != IGNORE_INDEX))
        self.assertEqual(texts, ["<search>good</search><|im_end|>\n", "<search>bad</search><|im_end|>\n"])

    def test_cosine_schedule_and_checkpoint_rotation(self):
        from drag_trainer.train import _cosine, _rotate

        self.assertAlmostEqual(_cosine(0, 100, 10), 0.1)
        self.assertAlmostEqual(_cosine(10, 100, 10), 1.0)
        self.assertAlmostEqual(_cosine(55, 100, 10), 0.5)
        self.assertAlmostEqual(_cosine(100, 100, 10), 0.0)
        d = tempfile.mkdtemp()
        for step in (100, 200, 300, 400, 1000):
            os.makedirs(os.path.join(d, f"checkpoint-{step}"))
        _rotate(d, 3)
        self.assertEqual(sorted(os.listdir(d)), ["checkpoint-1000", "checkpoint-300", "checkpoint-400"])


class LogTests(unittest.TestCase):
    def test_trainer_log_lines_and_status(self):
        d = tempfile.mkdtemp()
        now = [100.0]
        log = TrainLog(d, total_steps=40, clock=lambda: now[0])
        with open(os.path.join(d, "status.json")) as f:
            self.assertEqual(json.load(f)["state"], "starting")
        now[0] = 130.0
        rec = log.log(10, 1.23456789, 1e-4, 0.25)
        self.assertEqual(rec["percentage"], 25.0)
        self.assertEqual(rec["elapsed_time"], "0:00:30")
        self.assertEqual(rec["remaining_time"], "0:01:30")
        now[0] = 160.0
        log.log(20, 0.9, 5e-5, 0.5, eval_loss=1.1)
        log.status("failed", "CUDA out of memory")
        with open(os.path.join(d, "trainer_log.jsonl")) as f:
            lines = [json.loads(l) for l in f]
        self.assertEqual([l["current_steps"] for l in lines], [10, 20])
        self.assertEqual(set(lines[0]) >= {"current_steps", "total_steps", "loss", "learning_rate", "epoch", "percentage", "elapsed_time", "remaining_time"}, True)
        self.assertNotIn("eval_loss", lines[0])
        self.assertEqual(lines[1]["eval_loss"], 1.1)
        with open(os.path.join(d, "status.json")) as f:
            status = json.load(f)
        self.assertEqual((status["state"], status["step"], status["last_error"]), ("failed", 20, "CUDA out of memory"))

    def test_only_rank_zero_writes(self):
        d = os.path.join(tempfile.mkdtemp(), "out")
        TrainLog(d, 10, is_main=False).log(1, 1.0, 1e-4, 0.1)
        self.assertFalse(os.path.exists(d))

    def test_fmt_duration(self):
        self.assertEqual(fmt_duration(3725.4), "1:02:05")


class CliTests(unittest.TestCase):
    def run_cli(self, argv):
        out, err = io.StringIO(), io.StringIO()
        code = None
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exc:
                code = exc.code
        return code, out.getvalue(), err.getvalue()

    def test_sft_defaults_are_drags(self):
        args = cli.build_parser().parse_args(["sft", "--train-data", "x.jsonl"])
        self.assertEqual((args.model, args.epochs, args.batch_size, args.lr, args.lora_r, args.max_length, args.mask_strategy, args.weight_scheme, args.output_dir),
                         ("Qwen/Qwen3-VL-8B-Thinking", 3, 4, 2e-4, 16, 2048, "none", "none", "./checkpoints/sft"))
        self.assertEqual((args.lora_alpha, args.lora_dropout, args.grad_accum, args.save_steps), (32, 0.05, 4, 100))
        self.assertFalse(args.four_bit)
        self.assertEqual(cli.build_parser().parse_args(["dpo", "--train-data", "x"]).beta, 0.1)
        self.assertTrue(cli.build_parser().parse_args(["sft", "--train-data", "x", "--4bit"]).four_bit)

    def test_every_option_is_documented_in_help(self):
        parser = cli.build_parser()
        for name in ("sft", "dpo"):
            sub = parser._subparsers._group_actions[0].choices[name]  # noqa: SLF001
            for action in sub._actions:  # noqa: SLF001
                if action.option_strings and action.dest != "help":
                    self.assertTrue(action.help, f"{name} {action.option_strings} has no help")
        code, out, _ = self.run_cli(["sft", "--help"])
        self.assertEqual(code, 0)
        for option in ("--mask-strategy", "--weight-scheme", "--lora-targets", "--grad-accum", "--max-steps", "--images", "--4bit", "--seed"):
            self.assertIn(option, out)

    def test_bad_options_are_usage_errors(self):
        code, _, err = self.run_cli(["sft", "--train-data", "x", "--batch-size", "0"])
        self.assertEqual(code, 2)
        self.assertIn("--batch-size and --grad-accum must be at least 1", err)
        code, _, err = self.run_cli(["sft", "--train-data", "x", "--no-tune-llm"])
        self.assertIn("leaves nothing to train", err)
        code, _, err = self.run_cli(["sft", "--train-data", "x", "--mask-strategy", "all"])
        self.assertEqual(code, 2)

    def test_check_data_exit_codes(self):
        d = tempfile.mkdtemp()
        good, bad = os.path.join(d, "good.jsonl"), os.path.join(d, "bad.jsonl")
        write_jsonl(good, [{"prompt": "p", "chosen": "a", "rejected": "b"}])
        write_jsonl(bad, [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p"}])
        self.assertEqual(self.run_cli(["check-data", "--task", "dpo", good])[0], 0)
        code, out, err = self.run_cli(["check-data", "--task", "dpo", bad])
        self.assertEqual(code, 1)
        self.assertIn(f"{bad}:2: chosen:", err)
        code, out, _ = self.run_cli(["check-data", "--task", "dpo", "--json", bad])
        self.assertEqual(json.loads(out)["ok"], 1)
        self.assertEqual(self.run_cli(["check-data", "--task", "sft", os.path.join(d, "missing.jsonl")])[0], 1)

    def test_env_reports_without_ml_packages(self):
        r = report()
        self.assertIn("python", r)
        self.assertIn("torch", r["packages"])
        if r["packages"]["torch"] is None:
            self.assertFalse(r["ok"])
            self.assertIn("torch>=2.4", r["missing"])
        code, out, _ = self.run_cli(["env", "--json"])
        self.assertEqual(json.loads(out)["ok"], code == 0)

    def test_version_compare(self):
        self.assertTrue(version_at_least("4.57.1", "4.57"))
        self.assertFalse(version_at_least("4.56.2", "4.57"))
        self.assertTrue(version_at_least("2.5.1+cu124", "2.4"))

    def test_importing_needs_only_the_standard_library(self):
        import subprocess

        code = ("import sys, drag_trainer, drag_trainer.cli, drag_trainer.data, drag_trainer.masks, drag_trainer.weights, "
                "drag_trainer.collate, drag_trainer.trainlog, drag_trainer.envcheck; "
                "sys.argv = ['x', '--help']\ntry:\n    drag_trainer.cli.main(['sft', '--help'])\nexcept SystemExit:\n    pass\n"
                "print(sorted({'torch', 'transformers', 'peft', 'numpy'} & set(sys.modules)))")
        out = subprocess.run([sys.executable, "-c", code], cwd=os.path.join(os.path.dirname(__file__), ".."), capture_output=True, text=True, check=True).stdout
        self.assertEqual(out.strip().splitlines()[-1], "[]")


if __name__ == "__main__":
    unittest.main()
