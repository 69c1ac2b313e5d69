"""bench_bnn_c.json as Markdown: the BinaryNet C against its BinaryConnect twin and onnxruntime."""
from benchmarks.provenance import line
from benchmarks.tables.infer import generated_by

LABELS = {"binarynet": "BinaryNet (XNOR-popcount C)", "binaryconnect": "BinaryConnect twin (add/subtract C)"}
TARGETS = (("bc_c_over_bnn_c_batch1", "batch-1 latency, BinaryConnect C / BinaryNet C", 5.0),
           ("ort_over_bnn_c_batch1", "batch-1 latency, onnxruntime / BinaryNet C", 30.0),
           ("bnn_c_over_bc_c_batch256", "batch-256 throughput, BinaryNet C / BinaryConnect C", None),
           ("bnn_c_over_ort_batch256", "batch-256 throughput, BinaryNet C / onnxruntime", None))


def _verified(v: dict) -> str:
    bits = ", ".join(f"{b} {n}" for b, n in sorted(v.get("hidden_bits_differing", {}).items()))
    return ("PASSED" if v["verify_passed"] else "FAILED") + (f" (hidden bits differing: {bits})" if bits else "")


def _network(r: dict, targets: bool) -> list:
    """The table of one network's two variants and the table of their ratios."""
    lines = ["| network | back end | batch 1, ms | batch 256, samples/s | weight bytes | Cortex-M4 flash / RAM, B "
             "| verify |", "|---|---|---|---|---|---|---|"]
    for name, v in sorted(r["variants"].items(), key=lambda item: list(LABELS).index(item[0])
                          if item[0] in LABELS else len(LABELS)):      # BinaryNet first, as LABELS lists them
        mcu = v["microcontroller"]
        lines.append(f"| {LABELS.get(name, name)} | C | {v['C_batch1_ms_median']:.3f} | "
                     f"{v['C_batch256_samples_per_s']:,.0f} | {v['weight_bytes']:,} | {mcu['flash']:,} / {mcu['ram']:,} "
                     f"| {_verified(v)} on {v['verified_samples']:,} samples |")
        lines.append(f"| {LABELS.get(name, name)} | onnxruntime | {v['ORT_batch1_ms_median']:.3f} | "
                     f"{v['ORT_batch256_samples_per_s']:,.0f} | | | |")
    lines += ["", "| ratio | measured | target |", "|---|---|---|"]
    for key, label, target in TARGETS:
        value = r["ratios"][key]
        lines.append(f"| {label} | {value:.1f}x | " + (f"{target:.0f}x: {'met' if value >= target else 'not met'}"
                                                       if target and targets else "") + " |")
    return lines


def render(r: dict) -> str:
    bnn = r["variants"]["binarynet"]
    rounds = len(bnn["rounds"])
    lines = [line(r) + f" Network {bnn['network']}, one epoch on the bundled sample; one thread, CPU time; "
             f"C: {bnn['c_build']} (kernel path {bnn['kernel_path']}{generated_by(bnn)}); median of {rounds} "
             "alternated rounds.", "", *_network(r, targets=True)]
    if "cnn" in r:
        cnn = r["cnn"]["variants"]["binarynet"]
        lines += ["", f"The `cifar10-bnn` CNN ({cnn['network']}), one epoch on tiny CIFAR-10 files, and its "
                  f"BinaryConnect twin (kernel path {cnn['kernel_path']}; no target):", "",
                  *_network(r["cnn"], targets=False)]
    x = r["xnor"]
    lines += ["", f"The binary blocks alone (`{x['command']}`, clock {x['clock_ghz']:.2f} GHz; roofline: one "
              "XOR + popcount + add of a full vector register per cycle):", "",
              "| build | path | M | weights per cycle | of the roofline |", "|---|---|---|---|---|"]
    for row in x["rows"]:
        lines.append(f"| {row['build']} | {row['path']} | {row['M']} | {row['weights_per_cycle']:.1f} | "
                     f"{100 * row['of_roofline']:.1f} % of {row['roofline_weights_per_cycle']} |")
    return "\n".join(lines)
