"""bench_infer_<preset>.json as Markdown: every back end's latency, throughput and weight bytes."""
from benchmarks.provenance import line

BATCH = 256
ORDER = ("TF", "ORT", "ORT packed", "C", "NumPy f32")  # rows of the table


def ratios(run: dict) -> dict:
    """C against onnxruntime on model.onnx in one run: latency, throughput and weight-byte ratios."""
    r = run["results"]
    if "C" not in r:
        return {}
    c, o = r["C"], r["ORT"]
    return {"ort_over_c_batch1_latency": o["batch1_ms_median"] / c["batch1_ms_median"],
            f"c_over_ort_batch{BATCH}_throughput": c[f"batch{BATCH}_samples_per_s"] / o[f"batch{BATCH}_samples_per_s"],
            "ort_over_c_weight_bytes": o["weight_bytes"] / c["weight_bytes"] if c["weight_bytes"] else None}


def runs_of(result: dict) -> list:
    """The per-thread-count runs of a results file (one run, or several under "runs")."""
    return result["runs"] if "runs" in result else [result]


def render(result: dict) -> str:
    runs = runs_of(result)
    first = runs[0]
    lines = [line({**first, **result}) + f" TensorFlow {first['versions']['tensorflow']}, onnxruntime "
             f"{first['versions']['onnxruntime']}, NumPy {first['versions']['numpy']}; C: {first['c_build']} "
             f"(kernel path {first['c_kernel_path']}). Run {first['run_dir']} ({first['preset']}, input "
             f"{tuple(first['input_shape'])}, {first['binary_weights']:,} binary weights); random float32 "
             f"inputs; batch 1: {first['calls']} timed calls; batch {BATCH}: median of {first['rounds']} x "
             f"{first['batches']} calls.",
             "", f"| back end | threads | batch 1, median ms | batch 1, p90 ms | batch {BATCH}, samples/s | "
             "weight bytes held |", "|---|---|---|---|---|---|"]
    for run in runs:
        for name, r in sorted(run["results"].items(), key=lambda item: ORDER.index(item[0])):
            held = f"{r['weight_bytes']:,}" if r["weight_bytes"] is not None else "?"
            lines.append(f"| {name} | {run['threads']} | {r['batch1_ms_median']:.3f} | {r['batch1_ms_p90']:.3f} | "
                         f"{r[f'batch{BATCH}_samples_per_s']:,.0f} | {held} |")
    summary = [f"{run['threads']} thread(s): batch-1 latency {q['ort_over_c_batch1_latency']:.1f}x lower, "
               f"batch-{BATCH} throughput {q[f'c_over_ort_batch{BATCH}_throughput']:.2f}x, weights held "
               f"{q['ort_over_c_weight_bytes'] or 0:.1f}x smaller"
               for run in runs for q in [ratios(run)] if q]
    if summary:
        lines += ["", "C against onnxruntime on model.onnx: " + "; ".join(summary) + "."]
    return "\n".join(lines)
