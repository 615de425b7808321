"""Trainer tests that need only the standard library (run in CI with Debian's python3)."""

import contextlib
import io
import json
import os
import sys
import tempfile
import unittest
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from fakes import FakeThinkingTokenizer, FakeTokenizer, chatml, chatml_thinking  # noqa: E402

from drag_trainer import checkpoint, cli, images, lora, schedule  # noqa: E402
from drag_trainer.collate import length_grouped_order, pad_batch, padding_fraction  # noqa: E402
from drag_trainer.data import check_file, check_record, load_examples  # noqa: E402
from drag_trainer.envcheck import report, version_at_least  # noqa: E402
from drag_trainer.masks import (  # noqa: E402
    IGNORE_INDEX,
    assistant_spans,
    labels_from_offsets,
    learned_fraction,
    learned_spans,
    tag_spans,
)
from drag_trainer.trainlog import TrainLog, fmt_duration, keep_lines_up_to, resolve_report_to  # noqa: E402
from drag_trainer.weights import normalise, sample_weight, weighted_mean, window_loss  # noqa: E402


def learned_text(text, strategy, messages=None, template=chatml):
    """Renders, masks and returns the characters of the learned tokens, joined."""
    tok = FakeTokenizer()
    full, turns = assistant_spans(lambda m, g: template(m, g), messages)
    assert full == text or text is None
    spans, fell_back = learned_spans(strategy, full, turns)
    enc = tok(full)
    labels = labels_from_offsets(enc["input_ids"], enc["offset_mapping"], spans)
    return tok.decode_span(full, enc["offset_mapping"], labels), fell_back, labels


DRAG_SFT = [
    {"role": "user", "content": "<question>What was revenue in 2021?</question>"},
    {"role": "assistant", "content": "<think>need the income statement</think>\n<search>revenue 2021</search>"},
]
TRL_SFT = [
    {"role": "system", "content": "You search documents."},
    {"role": "user", "content": "What was revenue in 2021?"},
    {
        "role": "assistant",
        "content": "<think>look it up</think>",
        "tool_calls": [
            {"type": "function", "function": {"name": "search_documents", "arguments": {"query": "revenue 2021"}}}
        ],
    },
]


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

    def test_search_think_learns_the_reasoning_when_the_generation_prompt_opens_it(self):
        # Qwen3-VL Thinking: the prompt ends with "<think>\n", so the turn holds only "…</think>".
        msgs = [
            DRAG_SFT[0],
            {
                "role": "assistant",
                "content": "<think>\nneed the income statement\n</think>\n\n<search>revenue 2021</search>",
            },
        ]
        text, fell_back, _ = learned_text(None, "search-think", msgs, chatml_thinking)
        self.assertFalse(fell_back)
        self.assertEqual(text, "need the income statement\n</think><search>revenue 2021</search>")
        only, _, _ = learned_text(None, "search-only", msgs, chatml_thinking)
        self.assertEqual(only, "<search>revenue 2021</search>")

    def test_a_close_tag_before_the_open_tag_starts_at_the_turn(self):
        self.assertEqual(
            tag_spans("ab</think>c<think>d</think>", (("<think>", "</think>"),), [(0, 27)]), [(0, 10), (11, 27)]
        )

    def test_tool_calls_count_as_searches(self):
        text, fell_back, _ = learned_text(None, "search-only", TRL_SFT)
        self.assertFalse(fell_back)
        self.assertEqual(
            text, '<tool_call>\n{"name": "search_documents", "arguments": {"query": "revenue 2021"}}\n</tool_call>'
        )

    def test_none_learns_every_token_including_the_prompt(self):
        _, _, labels = learned_text(None, "none", DRAG_SFT)
        self.assertNotIn(IGNORE_INDEX, labels)

    def test_no_search_span_falls_back_to_the_assistant_turn(self):
        msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "The answer is 42."}]
        text, fell_back, _ = learned_text(None, "search-only", msgs)
        self.assertTrue(fell_back)
        self.assertEqual(text, "The answer is 42.<|im_end|>\n")

    def test_two_assistant_turns_are_both_learned_and_the_tool_result_is_not(self):
        msgs = [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "<search>a</search>"},
            {"role": "tool", "content": "page 3 <search>not mine</search>"},
            {"role": "assistant", "content": "<search>b</search>"},
        ]
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

    def test_weights_are_divided_by_their_mean_over_the_data(self):
        for got, want in zip(normalise([0.2, 1.0, 0.6, 0.2]), [0.4, 2.0, 1.2, 0.4]):
            self.assertAlmostEqual(got, want)
        self.assertEqual(normalise([0.0, 0.0]), [0.0, 0.0])
        self.assertEqual(normalise([]), [])

    def test_a_window_of_low_score_samples_gets_a_small_update(self):
        # Data: half the samples score 0.1, half 0.9. A step made only of 0.1 samples must move the
        # model 0.1 / 0.5 = 0.2 times as much as the same samples unweighted (today's per-window
        # division by the window's weights gave it full strength).
        weights = normalise([0.1] * 4 + [0.9] * 4)
        sums, tokens = [3.0, 5.0], 8.0
        weighted = window_loss(sums, weights[:2], tokens)
        plain = window_loss(sums, [1.0, 1.0], tokens)
        self.assertAlmostEqual(weighted / plain, 0.2)

    def test_equal_weights_keep_the_per_token_mean(self):
        # Two samples, 2 and 6 learned tokens with summed losses 2.0 and 12.0: the per-token mean is
        # 14 / 8, not the mean of the per-sample means (1.0 + 2.0) / 2.
        self.assertAlmostEqual(window_loss([2.0, 12.0], normalise([0.7, 0.7]), 8), 14 / 8)
        self.assertAlmostEqual(window_loss([2.0, 12.0], [1.0, 1.0], 8), 14 / 8)

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
        b = pad_batch(
            [{"input_ids": [1, 7, 7, 2], "mm_token_type_ids": [0, 1, 1, 0]}, {"input_ids": [3, 4]}], 0, multiple_of=8
        )
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
        write_jsonl(
            path,
            [
                {"messages": TRL_SFT},
                "{not json",
                {"input": "q", "output": ""},
                {"messages": [{"role": "robot", "content": "x"}]},
                "",
                {"input": "q", "output": "<search>a</search>", "rank_score": 1.5},
            ],
        )
        ok, errors = check_file("sft", path)
        self.assertEqual(ok, 1)
        text = [str(e) for e in errors]
        self.assertTrue(any(t.startswith(f"{path}:2: invalid JSON") for t in text), text)
        self.assertIn(f"{path}:3: output: missing or not a non-empty string", text)
        self.assertIn(f"{path}:4: messages[0].role: must be one of system, user, assistant, tool (got 'robot')", text)
        self.assertIn(f"{path}:6: rank_score: must be a number in [0, 1] or null (got 1.5)", text)

    def test_dpo_shapes(self):
        trl = {
            "prompt": TRL_SFT[:2],
            "chosen": [TRL_SFT[2]],
            "rejected": [
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {"type": "function", "function": {"name": "search_documents", "arguments": {"query": "x"}}}
                    ],
                }
            ],
        }
        self.assertEqual(check_record("dpo", trl), [])
        self.assertEqual(
            check_record("dpo", {"prompt": "p", "chosen": "<search>a</search>", "rejected": "<search>b</search>"}), []
        )
        self.assertEqual(
            check_record("dpo", {"prompt": "p", "chosen": "<search>a</search>", "rejected": "<search>a</search>"}),
            [("rejected", "is the same as chosen: the pair teaches nothing")],
        )
        share = {
            "conversations": [{"from": "human", "value": "q"}],
            "chosen": {"from": "function_call", "value": '{"name": "search_documents", "arguments": {"query": "a"}}'},
            "rejected": {"from": "gpt", "value": "b"},
        }
        self.assertEqual(check_record("dpo", share), [])
        self.assertEqual(
            check_record("dpo", {"prompt": "p"}),
            [("chosen", "missing or not a non-empty string"), ("rejected", "missing or not a non-empty string")],
        )

    def test_load_examples_normalises_every_shape_and_skips_bad_lines(self):
        path = os.path.join(self.dir, "mixed.jsonl")
        write_jsonl(
            path,
            [
                {
                    "input": "<question>q</question>",
                    "output": "<search>a</search>",
                    "rank_score": 0.0,
                    "question_id": "q1",
                },
                {
                    "conversations": [
                        {"from": "human", "value": "q"},
                        {"from": "function_call", "value": '{"name": "search_documents", "arguments": {"query": "a"}}'},
                    ],
                    "system": "S",
                    "tools": "[]",
                },
                {"messages": TRL_SFT, "images": ["pages/p1.png"]},
                {"input": 3},
            ],
        )
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
        self.assertEqual(
            learned, '<tool_call>\n{"name": "search_documents", "arguments": {"query": "revenue 2021"}}\n</tool_call>'
        )
        self.assertEqual(len(item["input_ids"]), len(item["labels"]))

    def test_truncation_is_counted_and_an_empty_sample_skipped(self):
        from drag_trainer.data import to_example

        enc = self.encoder(max_length=20)
        self.assertIsNone(
            enc.sft(to_example("sft", {"messages": TRL_SFT}), "search-only")
        )  # the search lies past token 20
        self.assertEqual((enc.truncated, enc.skipped), (1, 1))

    def test_dpo_rows_learn_the_completion_only(self):
        from drag_trainer.data import to_example

        enc = self.encoder()
        rows = enc.dpo(
            to_example("dpo", {"prompt": "p?", "chosen": "<search>good</search>", "rejected": "<search>bad</search>"})
        )
        tok = FakeTokenizer()
        texts = []
        for r in rows:
            offsets = tok(r["text"])["offset_mapping"]
            texts.append("".join(r["text"][s:e] for (s, e), l in zip(offsets, r["labels"]) if l != IGNORE_INDEX))
        self.assertEqual(texts, ["<search>good</search><|im_end|>\n", "<search>bad</search><|im_end|>\n"])

    def test_search_think_on_a_thinking_template_learns_the_reasoning_tokens(self):
        from argparse import Namespace

        from drag_trainer.data import to_example
        from drag_trainer.train import Encoder

        msgs = [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": "<think>\nlook in the annual report\n</think>\n\n<search>revenue</search>",
            },
        ]
        enc = Encoder(FakeThinkingTokenizer(), None, Namespace(max_length=4096, images=False))
        item = enc.sft(to_example("sft", {"messages": msgs}), "search-think")
        offsets = FakeTokenizer()(item["text"])["offset_mapping"]
        learned = "".join(item["text"][s:e] for (s, e), lab in zip(offsets, item["labels"]) if lab != IGNORE_INDEX)
        self.assertIn("look in the annual report", learned)
        self.assertEqual(enc.fallbacks, 0)

    def test_a_dpo_pair_over_max_length_is_skipped_whole_not_cut(self):
        from drag_trainer.data import to_example

        enc = self.encoder(max_length=30)
        ex = to_example(
            "dpo",
            {"prompt": "p?", "chosen": "<search>" + "good " * 20 + "</search>", "rejected": "<search>bad</search>"},
        )
        self.assertIsNone(enc.dpo(ex))
        self.assertEqual(enc.too_long, 1)
        rows = self.encoder(max_length=4096).dpo(ex)
        tok = FakeTokenizer()
        for r in rows:
            last = [
                r["text"][s:e]
                for (s, e), lab in zip(tok(r["text"])["offset_mapping"], r["labels"])
                if lab != IGNORE_INDEX
            ]
            self.assertEqual(last[-2:], ["<|im_end|>", "\n"])

    def test_image_rows_are_truncated_by_their_expanded_length_at_an_image_boundary(self):
        from argparse import Namespace

        from drag_trainer.data import to_example
        from drag_trainer.train import Encoder

        tok = FakeTokenizer()
        page = {"type": "image"}
        msgs = [
            {
                "role": "user",
                "content": [page, {"type": "text", "text": "first"}, page, {"type": "text", "text": "second"}],
            },
            {"role": "assistant", "content": "<search>revenue</search>"},
        ]
        # Two 560x560 pages: 40 x 40 patches of 14 px, merged 2 x 2: 400 tokens each.
        geometry = (14, 2, 4 * 28 * 28, 10000 * 28 * 28)
        full = Encoder(
            tok, object(), Namespace(max_length=4096, images=True), image_size=lambda p: (560, 560), geometry=geometry
        )
        ex = to_example("sft", {"messages": msgs, "images": ["/p1.png", "/p2.png"]})
        row = full.sft(ex, "none")
        self.assertEqual(row["image_tokens"], [400, 400])
        self.assertEqual(row["length"], len(row["input_ids"]) - 2 + 800)
        short = Encoder(
            tok, object(), Namespace(max_length=600, images=True), image_size=lambda p: (560, 560), geometry=geometry
        )
        cut = short.sft(ex, "none")
        self.assertEqual((cut["images"], cut["image_tokens"], short.truncated), (["/p1.png"], [400], 1))
        pad, start = tok.convert_tokens_to_ids("<|image_pad|>"), tok.convert_tokens_to_ids("<|vision_start|>")
        self.assertEqual(cut["input_ids"].count(pad), 1)
        self.assertNotEqual(cut["input_ids"][-1], start)  # the second image's opening token went with it
        self.assertLessEqual(cut["length"], 600)


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
        self.assertEqual(
            set(lines[0])
            >= {
                "current_steps",
                "total_steps",
                "loss",
                "learning_rate",
                "epoch",
                "percentage",
                "elapsed_time",
                "remaining_time",
            },
            True,
        )
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

    def test_sft_defaults_are_drags_but_the_mask(self):
        args = cli.build_parser().parse_args(["sft", "--train-data", "x.jsonl"])
        self.assertEqual(
            (
                args.model,
                args.epochs,
                args.batch_size,
                args.lr,
                args.lora_r,
                args.max_length,
                args.weight_scheme,
                args.output_dir,
            ),
            ("Qwen/Qwen3-VL-8B-Thinking", 3, 4, 2e-4, 16, 2048, "none", "./checkpoints/sft"),
        )
        # Not DRAG's "none": the system prompt and tool schema (hundreds of identical tokens a row) are not learned.
        self.assertEqual(args.mask_strategy, "assistant")
        self.assertEqual((args.resume, args.report_to), (None, None))
        dpo = cli.build_parser().parse_args(
            ["dpo", "--train-data", "x", "--resume", "auto", "--save-steps", "50", "--report-to", "none"]
        )
        self.assertEqual((dpo.resume, dpo.save_steps, dpo.report_to), ("auto", 50, "none"))
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
        for option in (
            "--mask-strategy",
            "--weight-scheme",
            "--lora-targets",
            "--grad-accum",
            "--max-steps",
            "--images",
            "--4bit",
            "--seed",
            "--resume",
            "--report-to",
        ):
            self.assertIn(option, out)

    def test_bad_options_are_usage_errors(self):
        code, _, err = self.run_cli(["sft", "--train-data", "x", "--batch-size", "0"])
        self.assertEqual(code, 2)
        self.assertIn("--batch-size and --grad-accum must be at least 1", err)
        code, _, err = self.run_cli(["sft", "--train-data", "x", "--no-tune-llm"])
        self.assertIn("leaves nothing to train", err)
        code, _, err = self.run_cli(["sft", "--train-data", "x", "--mask-strategy", "all"])
        self.assertEqual(code, 2)
        code, _, err = self.run_cli(["sft", "--train-data", "x", "--report-to", "wandb"])
        self.assertEqual(code, 2)
        code, _, err = self.run_cli(["sft", "--train-data", "x", "--save-total-limit", "0"])
        self.assertIn("--save-total-limit", err)

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

    def test_untested_versions_are_noted_not_refused(self):
        from drag_trainer.envcheck import TESTED, untested

        self.assertEqual(TESTED, {"torch": "2.11.0", "transformers": "5.17.0", "peft": "0.21.0"})
        self.assertIsNone(untested("transformers", "5.17.2"))
        self.assertIn("tested: 5.17.0", untested("transformers", "4.57.1"))
        self.assertIsNone(untested("torch", None))
        with open(os.path.join(os.path.dirname(__file__), "..", "requirements.txt")) as handle:
            pins = dict(l.strip().split("==") for l in handle if "==" in l)
        self.assertEqual({k: pins[k] for k in TESTED}, TESTED)

    def test_version_compare(self):
        self.assertTrue(version_at_least("4.57.1", "4.57"))
        self.assertFalse(version_at_least("4.56.2", "4.57"))
        self.assertTrue(version_at_least("2.5.1+cu124", "2.4"))

    def test_importing_needs_only_the_standard_library(self):
        import subprocess

        code = (
            "import sys, drag_trainer, drag_trainer.cli, drag_trainer.data, drag_trainer.masks, drag_trainer.weights, "
            "drag_trainer.collate, drag_trainer.trainlog, drag_trainer.envcheck, drag_trainer.schedule, "
            "drag_trainer.images, drag_trainer.checkpoint, drag_trainer.lora, drag_trainer.train; "
            "sys.argv = ['x', '--help']\n"
            "try:\n    drag_trainer.cli.main(['sft', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted({'torch', 'transformers', 'peft', 'numpy'} & set(sys.modules)))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=os.path.join(os.path.dirname(__file__), ".."),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        self.assertEqual(out.strip().splitlines()[-1], "[]")


class ScheduleTests(unittest.TestCase):
    """Sharding and the accumulation schedule: every rank must enter the same collectives."""

    def test_every_rank_gets_the_same_number_of_micro_batches(self):
        for n in range(1, 40):
            batches = [[i] for i in range(n)]
            for world in range(1, 6):
                shards = schedule.all_shards(batches, world)
                self.assertEqual(len({len(s) for s in shards}), 1, (n, world))
                seen = [b[0] for s in shards for b in s]
                self.assertEqual(len(seen), len(set(seen)))  # no batch twice
                self.assertEqual(len(seen), n - n % world)  # the tail that does not fill a round is dropped
                self.assertEqual(schedule.steps_in_epoch(n, world, 3), -(-(n // world) // 3))

    def test_the_dropped_tail_changes_with_the_epoch_order(self):
        lengths = [10] * 9
        dropped = set()
        for epoch in range(6):
            order = length_grouped_order(lengths, 1, seed=epoch)
            kept = {b[0] for s in schedule.all_shards(order, 2) for b in s}
            dropped |= set(range(9)) - kept
        self.assertGreater(len(dropped), 1)

    def test_gradients_sync_on_the_last_micro_batch_of_each_step_only(self):
        self.assertEqual(schedule.windows(5, 2), [[(0, False), (1, True)], [(2, False), (3, True)], [(4, True)]])
        self.assertEqual(schedule.windows(3, 1), [[(0, True)], [(1, True)], [(2, True)]])
        self.assertEqual(schedule.windows(0, 4), [])

    def test_rank_out_of_range(self):
        with self.assertRaises(ValueError):
            schedule.shard([[0]], 2, 2)

    def test_step_norm_counts_every_rank_and_micro_batch(self):
        shards = [[[0, 1], [2]], [[3], [4, 5]]]  # two ranks, two micro-batches each
        units = [1, 2, 3, 4, 5, 6]
        # All learned tokens of the step (21) divided by the 2 ranks whose gradients DDP averages.
        self.assertEqual(schedule.step_norm(shards, [0, 1], units), 21 / 2)
        self.assertEqual(schedule.step_norm(shards, [1], units), (3 + 5 + 6) / 2)
        self.assertEqual(schedule.step_norm([[[0]]], [0], [0]), 1.0)

    def test_cosine_schedule(self):
        self.assertAlmostEqual(schedule.cosine(0, 100, 10), 0.1)
        self.assertAlmostEqual(schedule.cosine(10, 100, 10), 1.0)
        self.assertAlmostEqual(schedule.cosine(55, 100, 10), 0.5)
        self.assertAlmostEqual(schedule.cosine(100, 100, 10), 0.0)

    def test_completion_window_keeps_only_the_logits_of_learned_labels(self):
        x = IGNORE_INDEX
        labels = [[x, x, x, x, 7, 8, x, x], [x, x, x, x, x, 5, 6, 9]]
        keep, first = schedule.completion_window(labels)
        self.assertEqual((keep, first), (5, 4))
        # The kept logits are positions 3..7; dropping the last, 3..6 predict labels 4..7.
        self.assertEqual(len(labels[0]) - keep, first - 1)
        self.assertEqual(schedule.completion_window([[x, x, x]]), (1, 3))


class ImageTests(unittest.TestCase):
    def test_image_token_counts_follow_qwen_vl_resizing(self):
        qwen2 = dict(patch=14, merge=2, min_pixels=256 * 28 * 28, max_pixels=1280 * 28 * 28)
        self.assertEqual(images.image_tokens(560, 560, **qwen2), 400)
        page = images.image_tokens(1700, 2200, **qwen2)  # a letter page at 200 dpi: capped by the budget
        self.assertTrue(1200 < page <= 1280, page)
        self.assertEqual(images.image_tokens(20, 20, **qwen2), 256)  # raised to the minimum
        self.assertEqual(
            images.image_tokens(64, 64, patch=16, merge=2, min_pixels=4 * 32 * 32, max_pixels=16 * 32 * 32), 4
        )
        with self.assertRaises(ValueError):
            images.image_tokens(10, 5000, **qwen2)

    def test_fit_never_cuts_inside_an_image(self):
        ids = [1, 2, 5, 9, 3, 5, 9, 4, 4]  # 5 = vision_start, 9 = image_pad
        labels = [1, 2, -100, -100, 3, -100, -100, 4, 4]
        self.assertEqual(images.fit(ids, labels, 9, [10, 10], 100, 5), (ids, labels, 2, False))
        cut_ids, cut_labels, kept, truncated = images.fit(ids, labels, 9, [10, 10], 20, 5)
        self.assertEqual(
            (cut_ids, kept, truncated), ([1, 2, 5, 9, 3], 1, True)
        )  # 15 tokens; the second image would end at 26
        self.assertEqual(len(cut_labels), len(cut_ids))
        self.assertEqual(images.fit([1, 2, 3], [1, 2, 3], -1, [], 2), ([1, 2], [1, 2], 0, True))
        with self.assertRaises(ValueError):
            images.fit(ids, labels, 9, [10], 100)

    def test_expand_repeats_each_image_slot_and_never_learns_it(self):
        out = images.expand([1, 9, 2], [1, 9, 2], 9, [3])
        self.assertEqual(out["input_ids"], [1, 9, 9, 9, 2])
        self.assertEqual(out["labels"], [1, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, 2])
        self.assertEqual(out["mm_token_type_ids"], [0, 1, 1, 1, 0])

    def test_pixel_limits_the_processor_does_not_take_are_reported(self):
        class Sized:  # transformers 5: limits in size
            size = {"shortest_edge": 3136, "longest_edge": 12845056}

        p = Sized()
        self.assertIsNone(images.apply_pixels(p, 200704, 1003520))
        self.assertEqual(images.effective_pixels(p), (200704, 1003520))

        class Edges:  # a SizeDict-like object instead of a dict
            shortest_edge, longest_edge = 3136, 12845056

        q = Sized()
        q.size = Edges()
        self.assertEqual(images.effective_pixels(q), (3136, 12845056))
        self.assertIsNone(images.apply_pixels(q, 200704, 1003520))
        self.assertEqual(images.effective_pixels(q), (200704, 1003520))

        class Fixed:  # a processor whose limits cannot be changed
            @property
            def min_pixels(self):
                return 3136

            @property
            def max_pixels(self):
                return 12845056

        problem = images.apply_pixels(Fixed(), 200704, 1003520)
        self.assertIn("--min-pixels 200704", problem)


class FakeModule:
    def __init__(
        self,
        names=(
            "model.layers.0.self_attn.q_proj",
            "model.layers.0.mlp.down_proj",
            "visual.blocks.0.mlp.down_proj",
            "visual.merger.mlp.0",
        ),
    ):
        self.calls = []
        self.names = names

    def named_modules(self):
        return [(n, None) for n in self.names]

    def gradient_checkpointing_enable(self, **kwargs):
        self.calls.append("gradient_checkpointing_enable")

    def enable_input_require_grads(self):
        self.calls.append("enable_input_require_grads")


def fake_ml_modules(model):
    """Just enough of torch and peft for train.build_trainable to run without them."""
    import types

    torch = types.ModuleType("torch")
    torch.bfloat16, torch.float16 = "bf16", "fp16"
    torch.nn = types.SimpleNamespace(Dropout=type("Dropout", (), {}))
    peft = types.ModuleType("peft")
    configs = []

    class LoraConfig:
        def __init__(self, **kwargs):
            configs.append(kwargs)

    class Peft(FakeModule):
        def __init__(self, base):
            super().__init__(base.names)
            self.calls = base.calls
            self.peft_config = {"default": types.SimpleNamespace(r=64, lora_alpha=128)}

        def load_adapter(self, path, adapter_name, is_trainable):
            self.calls.append(f"load_adapter {adapter_name}")

        def set_adapter(self, name):
            pass

        def modules(self):
            return []

        def named_parameters(self):
            return [
                (
                    "base.model.layers.0.self_attn.q_proj.lora_A.default.weight",
                    types.SimpleNamespace(requires_grad=True, dtype="fp32"),
                )
            ]

    peft.LoraConfig = LoraConfig
    peft.get_peft_model = lambda m, config: Peft(m)
    peft.PeftModel = types.SimpleNamespace(from_pretrained=lambda m, path, is_trainable: Peft(m))
    return {"torch": torch, "peft": peft}, configs


def trainer_args(**over):
    args = cli.build_parser().parse_args(["sft", "--train-data", "x"])
    for k, v in over.items():
        setattr(args, k, v)
    return args


class LoraTests(unittest.TestCase):
    def test_no_tune_llm_adds_no_lora_layer_instead_of_a_pattern_that_matches_nothing(self):
        from unittest import mock

        from drag_trainer import train

        modules, configs = fake_ml_modules(None)
        with mock.patch.dict(sys.modules, modules):
            train.build_trainable(FakeModule(), trainer_args(tune_llm=False, tune_mlp=True), True)
        self.assertEqual(configs[-1]["target_modules"], lora.DUMMY_TARGET_MODULES)
        self.assertEqual(configs[-1]["modules_to_save"], ["merger"])

    def test_dpo_from_an_sft_adapter_enables_gradient_checkpointing(self):
        from unittest import mock

        from drag_trainer import train

        modules, _ = fake_ml_modules(None)
        args = trainer_args(command="dpo", sft_adapter="/jobs/sft/out/final")
        base = FakeModule()
        with mock.patch.dict(sys.modules, modules):
            _, ref, _ = train.build_trainable(base, args, False)
        self.assertEqual(ref, "reference")
        self.assertEqual(base.calls[:2], ["gradient_checkpointing_enable", "enable_input_require_grads"])
        base = FakeModule()
        with mock.patch.dict(sys.modules, modules):
            train.build_trainable(
                base, trainer_args(command="dpo", sft_adapter="/a", gradient_checkpointing=False), False
            )
        self.assertEqual(base.calls, ["load_adapter reference"])

    def test_targets_are_language_model_leaves_and_typos_are_named(self):
        pattern = lora.target_pattern("q_proj, down_proj,", True)
        import re

        self.assertTrue(re.match(pattern, "model.layers.0.mlp.down_proj"))
        self.assertFalse(re.match(pattern, "visual.blocks.0.mlp.down_proj"))
        names = [n for n, _ in FakeModule().named_modules()]
        self.assertEqual(lora.unmatched_targets(names, "q_proj,down_proj,qproj"), ["qproj"])
        with self.assertRaises(ValueError):
            lora.target_pattern(" , ", True)

    def test_a_lora_target_that_matches_nothing_is_a_clear_error(self):
        from unittest import mock

        from drag_trainer import train

        modules, _ = fake_ml_modules(None)
        with mock.patch.dict(sys.modules, modules), self.assertRaises(SystemExit) as ctx:
            train.build_trainable(FakeModule(), trainer_args(lora_targets="q_proj,c_attn"), True)
        self.assertIn("c_attn", str(ctx.exception))

    def test_fully_trained_copies_are_kept_in_fp32(self):
        self.assertTrue(lora.keep_in_fp32("base_model.model.visual.merger.modules_to_save.default.mlp.0.weight"))
        self.assertFalse(lora.keep_in_fp32("base_model.model.layers.0.self_attn.q_proj.lora_A.default.weight"))
        self.assertEqual(lora.modules_to_save(True, True), ["visual"])
        self.assertIn("trains no parameter", lora.nothing_trained_message([], "x"))


class CheckpointTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def save(self, step, fail=False):
        def files(path):
            for name in checkpoint.FILES:
                with open(os.path.join(path, name), "w") as handle:
                    handle.write("x")
            if fail:
                raise KeyboardInterrupt("stopped while saving")

        return checkpoint.write(self.dir, step, {"epoch": 0, "args": {"seed": 1}}, files)

    def test_resume_auto_picks_the_newest_complete_checkpoint_never_a_half_written_one(self):
        self.assertIsNone(checkpoint.resolve_resume("auto", self.dir))
        self.save(10)
        self.save(20)
        with self.assertRaises(KeyboardInterrupt):
            self.save(30, fail=True)
        self.assertTrue(os.path.isdir(os.path.join(self.dir, "checkpoint-30.partial")))
        os.makedirs(os.path.join(self.dir, "checkpoint-40"))  # an old trainer's checkpoint: no state, no optimizer
        self.assertEqual(checkpoint.resolve_resume("auto", self.dir), os.path.join(self.dir, "checkpoint-20"))
        self.assertEqual(checkpoint.resolve_resume(self.dir, "/elsewhere"), os.path.join(self.dir, "checkpoint-20"))
        self.assertEqual(
            checkpoint.resolve_resume(os.path.join(self.dir, "checkpoint-10"), "/elsewhere"),
            os.path.join(self.dir, "checkpoint-10"),
        )
        self.assertIsNone(checkpoint.resolve_resume(None, self.dir))
        os.remove(os.path.join(self.dir, "checkpoint-20", "optimizer.pt"))
        self.assertEqual(checkpoint.resolve_resume("auto", self.dir), os.path.join(self.dir, "checkpoint-10"))
        with self.assertRaises(SystemExit) as ctx:
            checkpoint.resolve_resume(os.path.join(self.dir, "checkpoint-30.partial"), self.dir)
        self.assertIn("not a complete checkpoint", str(ctx.exception))

    def test_state_is_written_last_and_names_the_step(self):
        path = self.save(7)
        with open(os.path.join(path, checkpoint.STATE_FILE)) as handle:
            state = json.load(handle)
        self.assertEqual((state["step"], state["complete"], state["args"]), (7, True, {"seed": 1}))
        os.rename(path, os.path.join(self.dir, "checkpoint-8"))  # a folder renamed by hand is not trusted
        self.assertIsNone(checkpoint.read_state(os.path.join(self.dir, "checkpoint-8")))

    def test_rotation_keeps_the_newest_and_clears_partial_folders(self):
        for step in (100, 200, 300, 400, 1000):
            os.makedirs(os.path.join(self.dir, f"checkpoint-{step}"))
        os.makedirs(os.path.join(self.dir, "checkpoint-1100.partial"))
        checkpoint.rotate(self.dir, 3)
        self.assertEqual(sorted(os.listdir(self.dir)), ["checkpoint-1000", "checkpoint-300", "checkpoint-400"])

    def test_a_checkpoint_continues_only_its_own_run(self):
        args = trainer_args(train_data=os.path.join(self.dir, "missing.jsonl"))
        saved = checkpoint.fingerprint(args, 2)
        self.assertIsNone(checkpoint.mismatch(saved, checkpoint.fingerprint(args, 2)))
        self.assertEqual(
            checkpoint.mismatch(saved, checkpoint.fingerprint(args, 4)),
            "number of processes is 4 but the checkpoint's run used 2",
        )
        args.batch_size = 8
        self.assertEqual(
            checkpoint.mismatch(saved, checkpoint.fingerprint(args, 2)),
            "--batch-size is 8 but the checkpoint's run used 4",
        )

    def test_a_request_file_asks_for_a_checkpoint_like_sigusr1(self):
        self.assertFalse(checkpoint.requested(self.dir))
        open(os.path.join(self.dir, "save-and-stop"), "w").close()
        self.assertTrue(checkpoint.requested(self.dir))
        self.assertEqual(checkpoint.complete_checkpoints(self.dir), [])  # never taken for a checkpoint
        checkpoint.rotate(self.dir, 1)
        self.assertTrue(checkpoint.requested(self.dir))
        checkpoint.clear_request(self.dir)
        checkpoint.clear_request(self.dir)
        self.assertFalse(checkpoint.requested(self.dir))

    def test_the_job_wrappers_stop_file_asks_too_and_is_left_for_the_wrapper(self):
        stop = os.path.join(self.dir, "requeue_requested")
        with mock.patch.dict(os.environ, {checkpoint.STOP_FILE_ENV: stop}):
            self.assertFalse(checkpoint.requested(self.dir))
            open(stop, "w").close()
            self.assertTrue(checkpoint.requested(self.dir))
            checkpoint.clear_request(self.dir)
            self.assertTrue(os.path.exists(stop))  # the wrapper reads it to requeue the job

    def test_the_preempted_exit_status_is_distinct(self):
        self.assertEqual(checkpoint.PREEMPTED_EXIT, 75)
        self.assertNotIn(checkpoint.PREEMPTED_EXIT, (0, 1, 2, 130, 143))


class ReportTests(unittest.TestCase):
    def test_tensorboard_gets_the_logged_numbers(self):
        class Sink:
            def __init__(self):
                self.scalars, self.flushed, self.closed = [], 0, False

            def add_scalar(self, tag, value, step):
                self.scalars.append((tag, value, step))

            def flush(self):
                self.flushed += 1

            def close(self):
                self.closed = True

        sink = Sink()
        log = TrainLog(tempfile.mkdtemp(), 10, sink=sink, clock=lambda: 0.0)
        log.log(5, 1.5, 1e-4, 0.5, eval_loss=1.25, tokens_per_second=100.0)
        self.assertEqual(
            sink.scalars,
            [
                ("train/loss", 1.5, 5),
                ("train/learning_rate", 1e-4, 5),
                ("train/epoch", 0.5, 5),
                ("eval/loss", 1.25, 5),
                ("train/tokens_per_second", 100.0, 5),
            ],
        )
        log.close()
        self.assertTrue(sink.closed)
        quiet = Sink()
        TrainLog(os.path.join(tempfile.mkdtemp(), "x"), 10, is_main=False, sink=quiet).log(1, 1.0, 1e-4, 0.1)
        self.assertEqual(quiet.scalars, [])

    def test_report_to_defaults_to_tensorboard_when_installed(self):
        self.assertEqual(resolve_report_to(None, True), "tensorboard")
        self.assertEqual(resolve_report_to(None, False), "none")
        self.assertEqual(resolve_report_to("none", True), "none")
        with self.assertRaises(SystemExit) as ctx:
            resolve_report_to("tensorboard", False)
        self.assertIn("pip install tensorboard", str(ctx.exception))

    def test_a_resumed_run_drops_the_log_lines_after_its_checkpoint(self):
        d = tempfile.mkdtemp()
        log = TrainLog(d, 10, clock=lambda: 0.0)
        for step in (2, 4, 6):
            log.log(step, 1.0, 1e-4, 0.1)
        with open(os.path.join(d, "trainer_log.jsonl"), "a") as handle:
            handle.write('{"current_steps": 8, "lo')  # killed mid-line
        TrainLog(d, 10, resume_step=4, clock=lambda: 0.0).log(5, 1.0, 1e-4, 0.1)
        with open(os.path.join(d, "trainer_log.jsonl")) as handle:
            self.assertEqual([json.loads(l)["current_steps"] for l in handle], [2, 4, 5])
        TrainLog(d, 10, clock=lambda: 0.0)  # a fresh run in the same folder starts a fresh curve
        self.assertEqual(os.path.getsize(os.path.join(d, "trainer_log.jsonl")), 0)
        keep_lines_up_to(os.path.join(d, "missing.jsonl"), 3)


if __name__ == "__main__":
    unittest.main()
