"""bench_bgemm.json and bench_cnn_c.json as Markdown: the binary product kernel, the CNNs in C."""
from benchmarks.provenance import line

BGEMM_NAMES = {"avx512": "`bcnn_bgemm` AVX-512", "avx2": "`bcnn_bgemm` AVX2", "portable": "`bcnn_bgemm` portable C99",
               "neon": "`bcnn_bgemm` NEON", "onnxruntime": "onnxruntime MatMul, float32",
               "numpy": "NumPy float32 matmul"}


def render_bgemm(r: dict) -> str:
    """The network's batch-1 latency and batch throughput per path, and its 2048x2048 rates."""
    batch, res = r["batch"], r["results"]
    big1, big = "1x2048x2048", f"{batch}x2048x2048"
    clock = f"; clock under load about {r['clock_ghz_under_load']:.2f} GHz" if r.get("clock_ghz_under_load") else ""
    lines = [line(r) + f" {r['compiler']}; one thread; median of {r['rounds']} interleaved rounds of "
             f"{r['seconds']} s per shape{clock}.", "",
             f"| back end | network batch 1, µs | network batch {batch}, samples/s | 2048×2048, M = 1, "
             f"weight bits/ns | 2048×2048, M = {batch}, weight bits/ns |", "|---|---|---|---|---|"]
    for name, v in res.items():
        shapes = v["shapes"]
        lines.append(f"| {BGEMM_NAMES.get(name, name)} | {v['network_batch1_us']:,.1f} | "
                     f"{v['network_batch_samples_per_s']:,.0f} | {shapes[big1]['weight_bits_per_ns']:.1f} | "
                     f"{shapes[big]['weight_bits_per_ns']:.1f} |")
    counted = {name: v["instructions"] for name, v in res.items() if "instructions" in v}
    if counted:
        lines += ["", "| path | callgrind, 2048×2048, M = 1 | callgrind, M = 8 | compiled inner loops "
                  "(lookups per pass: instructions per weight bit) |", "|---|---|---|---|"]
        for name, ins in counted.items():
            cg = ins["callgrind_per_weight_bit_2048x2048"]
            loops = ", ".join(f"{d['lookups']}: {d['per_weight_bit']:.3f}" for d in ins["inner_loops"]) or "–"
            cells = [f"{cg[k]:.3f}" if cg.get(k) is not None else "–" for k in ("M=1", "M=8")]
            lines.append(f"| {name} | {cells[0]} | {cells[1]} | {loops} |")
    return "\n".join(lines)


def render_cnn_c(r: dict) -> str:
    """Per preset: sizes, compile cost, verify, the C entry points' times and Cortex-M4 sizes."""
    lines = [line(r) + " One epoch of each preset's whole network on tiny files in the official formats, "
             "then `bcexport onnx`, `bcexport c`, `bcexport verify`.", "",
             "| preset | binary weights | 1-bit weights | bcnn_model.c | compile (-O2 -march=native -c) | object text "
             "| scratch, tile 16 | conv rows per product | Cortex-M4 flash / RAM |", "|---|---|---|---|---|---|---|---|---|"]
    for p in r["results"]:
        c, mcu = p["compile"], p.get("microcontroller") or {}
        mcu_cell = f"{mcu['flash']:,} / {mcu['ram']:,} B" if "flash" in mcu else mcu.get("skipped", "–")
        lines.append(f"| {p['preset']} | {p['binary_weights']:,} | {p['weight_bytes']:,} B | {c['source_bytes']:,} B | "
                     f"{c['seconds']:.1f} s | {c['text']:,} B | {p['native']['scratch_bytes']:,} B | "
                     f"{', '.join(map(str, p['conv_rows']))} | {mcu_cell} |")
    lines += ["", "| preset | preprocessing | verify | c /tol | c_raw /tol | float entry, batch 1 | pixel entry, "
              "batch 1 | preprocessing per image, batch 1 / 16 | seconds: train, onnx, c, verify |",
              "|---|---|---|---|---|---|---|---|---|"]
    for p in r["results"]:
        e, v = p["entry_points"], p["verify"]
        lines.append(f"| {p['preset']} | {p['preprocess']} | {'PASSED' if p['verify_passed'] else 'FAILED'} | "
                     f"{v['c']['max_diff_over_tol']:.3g} | {v['c_raw']['max_diff_over_tol']:.3g} | "
                     f"{e['batch1']['x_ms']:.2f} ms | {e['batch1']['pixels_ms']:.2f} ms | "
                     f"{e['batch1']['preprocessing_ms_per_image']:.2f} / "
                     f"{e['batch16']['preprocessing_ms_per_image']:.2f} ms | "
                     f"{', '.join(f'{s:.0f}' for s in p['seconds'].values())} |")
    for p in r["results"]:
        if "zca_float32" in p:
            z = p["zca_float32"]
            lines += ["", f"{p['preset']}: a float32 ZCA would move the logits by up to "
                      f"{z['float32_blas']['max_over_tol']:.3g} x the raw-pixel tolerance (NumPy/BLAS order; "
                      f"{z['float32_blas']['samples_over_tol']} samples over it), "
                      f"{z['float32_sequential']['max_over_tol']:.3g} x (sequential sum; "
                      f"{z['float32_sequential']['samples_over_tol']} over); the C's double ZCA: "
                      f"{p['verify']['c_raw']['max_diff_over_tol']:.3g} x (whole C model)."]
    return "\n".join(lines)
