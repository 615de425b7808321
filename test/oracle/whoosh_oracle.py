#!/usr/bin/env python3
"""Reference search results from Whoosh 2.7 itself, configured exactly as DRAG's search_engine.py
(DRAG-SPEC §2): the test oracle for search parity and the baseline for `npm run bench -- search`.

Usage: whoosh_oracle.py --ocr OCR.jsonl --index-dir DIR --queries Q.txt --top-k K --out OUT.jsonl
Queries: one per line. Output: one JSON line per query {query, results[{file,page_number,total_pages,score}], ms};
the last line of stdout is a JSON object with timings.
Run it with Debian's python3 (apt-get install python3-whoosh).
"""
import argparse, json, os, resource, shutil, statistics, sys, time

from whoosh import index as windex
from whoosh.fields import ID, NUMERIC, TEXT, Schema
from whoosh.qparser import QueryParser


def build(ocr, index_dir):
    if os.path.exists(index_dir):
        shutil.rmtree(index_dir)
    os.makedirs(index_dir)
    schema = Schema(file=ID(stored=True), page_number=NUMERIC(stored=True),
                    total_pages=NUMERIC(stored=True), text=TEXT(stored=False))
    ix = windex.create_in(index_dir, schema)
    writer = ix.writer(limitmb=512, procs=1)
    with open(ocr, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            writer.add_document(file=rec["file"], page_number=rec["page_number"],
                                total_pages=rec["total_pages"], text=rec.get("text", "") or "")
    writer.commit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ocr", required=True)
    ap.add_argument("--index-dir", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    built = False
    if args.rebuild or not windex.exists_in(args.index_dir):
        build(args.ocr, args.index_dir)
        built = True
    build_s = time.perf_counter() - t0 if built else None

    t0 = time.perf_counter()
    ix = windex.open_dir(args.index_dir)
    with ix.searcher() as s:
        s.doc_count_all()
    load_s = time.perf_counter() - t0

    with open(args.queries, encoding="utf-8") as f:
        queries = [q.rstrip("\n") for q in f if q.strip()]
    times = []
    with open(args.out, "w", encoding="utf-8") as out:
        parser = QueryParser("text", schema=ix.schema)
        for q in queries:
            t = time.perf_counter()
            # As DRAG: a new searcher per call, parse, search with limit=top_k.
            with ix.searcher() as searcher:
                parsed = parser.parse(q)
                hits = searcher.search(parsed, limit=args.top_k)
                results = [
                    {
                        "file": h["file"],
                        "page_number": h["page_number"],
                        "total_pages": h["total_pages"],
                        "score": h.score,
                    }
                    for h in hits
                ]
            ms = (time.perf_counter() - t) * 1000
            times.append(ms)
            out.write(
                json.dumps({"query": q, "parsed": repr(parsed), "results": results, "ms": ms}, ensure_ascii=False)
                + "\n"
            )
    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else None
    print(json.dumps({"build_s": build_s, "load_s": load_s, "queries": len(times),
                      "p50_ms": statistics.median(times) if times else None, "p95_ms": p95,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    sys.exit(main())
