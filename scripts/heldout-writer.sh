#!/usr/bin/env bash
# Held-out check of the local query writer on real documents (issue: "the same improvement holds on
# real documents you have not seen"): cross-validation over a question set. For each fold, the
# keyword agent collects trajectories (16 samples, ranks to 10) on the training questions only, the
# writer is trained on their successful queries, and both the keyword agent and the writer are
# evaluated (greedy) on the fold's held-out questions, which the writer never saw. The folds'
# evaluations are pooled (every question is held out exactly once) and compared with drag compare.
#
#   scripts/heldout-writer.sh [questions.jsonl] [ocr_output.jsonl] [work dir]
# Default: the shared FinanceBench questions and corpus (read from ../shared, never copied).
# Environment: SPLIT (questions) is how the folds are made: "questions", two halves of the question
# ids shuffled with SPLIT_SEED (7); "documents", one fold per document (the writer is evaluated on
# documents none of its training questions were about). SAMPLES (16) and
# TEMPERATURE (1.2, "creative") are the keyword agent's exploration when collecting.
set -euo pipefail
cd "$(dirname "$0")/.."
Q="${1:-../shared/data/financebench-mini/questions.jsonl}"
O="${2:-../shared/data/financebench-mini/ocr_output.jsonl}"
W="${3:-$(mktemp -d /tmp/drag-heldout-XXXXXX)}"
DRAG="node dist/cli.js"
[ -f dist/cli.js ] || npm run build >/dev/null
mkdir -p "$W"
echo "work dir: $W" >&2
# The folds: SPLIT=questions (default) shuffles the question ids with a fixed seed into two halves;
# SPLIT=documents holds out one document at a time (every question about it), so the writer is
# evaluated on documents none of its training questions were about.
python3 - "$Q" "$W" "${SPLIT_SEED:-7}" "${SPLIT:-questions}" <<'PY'
import json, random, sys
qs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ids = [q["question_id"] for q in qs]
if sys.argv[4] == "documents":
    doc = {q["question_id"]: (q.get("answer_locations") or [{}])[0].get("document", "?") for q in qs}
    folds = [[i for i in ids if doc[i] == d] for d in sorted(set(doc.values()))]
else:
    random.Random(int(sys.argv[3])).shuffle(ids)
    half = len(ids) // 2
    folds = [ids[:half], ids[half:]]
for k, test in enumerate(folds):
    json.dump(test, open(f"{sys.argv[2]}/test{k}.json", "w"))
    json.dump([i for i in ids if i not in test], open(f"{sys.argv[2]}/train{k}.json", "w"))
print(f"{len(ids)} questions in {len(folds)} folds: " + " + ".join(str(len(f)) for f in folds), file=sys.stderr)
PY
K=$(ls "$W"/test*.json | wc -l)
for k in $(seq 0 $((K - 1))); do
  train="$W/train$k.json"; test="$W/test$k.json"; f="$W/f$k"
  # Training data: 16 samples per question, results to rank 10 (with 15 questions and rank 3 the
  # keyword agent may find nothing to learn from); evaluation stays at the usual top 3.
  $DRAG collect --agent keyword --questions "$Q" --ocr "$O" --include-json "$train" --samples "${SAMPLES:-16}" --top-k 10 --sampling-config creative --temperature "${TEMPERATURE:-1.2}" --out "$f/runs/keyword" 2>/dev/null
  $DRAG process --input "$f/runs/keyword/trajectories.jsonl" --output "$f/processed.jsonl" --stats "$f/stats.json" --top-k 10 >/dev/null 2>&1
  $DRAG format --input "$f/processed.jsonl" --output-dir "$f/ds" --formats sft_query --train-ratio 1.0 >/dev/null 2>&1
  $DRAG writer train --data "$f/ds/sft_query_train.jsonl" --ocr "$O" --out "$f/writer.json"
  $DRAG eval --agent keyword --questions "$Q" --ocr "$O" --include-json "$test" --sampling-config greedy --out "$f/eval-keyword" 2>/dev/null
  $DRAG eval --agent writer --writer-model "$f/writer.json" --questions "$Q" --ocr "$O" --include-json "$test" --sampling-config greedy --out "$f/eval-writer" 2>/dev/null
done
for a in keyword writer; do
  mkdir -p "$W/pooled-$a"
  for k in $(seq 0 $((K - 1))); do cat "$W/f$k/eval-$a/trajectories.jsonl"; done > "$W/pooled-$a/trajectories.jsonl"
  $DRAG score --trajectories "$W/pooled-$a/trajectories.jsonl" --out "$W/pooled-$a" >/dev/null
done
$DRAG compare "$W/pooled-keyword" "$W/pooled-writer" --markdown | tee "$W/comparison.md"
$DRAG compare "$W/pooled-keyword" "$W/pooled-writer" --json > "$W/comparison.json"
