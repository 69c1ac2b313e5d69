"""benchmarks.tables: results files as Markdown, on hand-made results of the benchmarks' shapes
(the benchmarks' own smoke tests render their real output; these cover what no quick test runs)."""
from benchmarks.tables import bnn, ckernels, cnn, cnn_check, speed

PROV = {"command": "make bench-x", "machine": "CPU: T, 2 cores", "date": "2026-12-07T00:00:00+00:00"}


def infer_run(threads):
    row = {"batch1_ms_median": 1.5, "batch1_ms_p90": 2.0, "batch256_samples_per_s": 8000.0, "weight_bytes": 40_000_000}
    c = {"batch1_ms_median": 0.1, "batch1_ms_p90": 0.2, "batch256_samples_per_s": 16000.0, "weight_bytes": 1_250_000}
    return {"threads": threads, "results": {"ORT": row, "C": c}}


def cnn_results(bf16_kernels=False):
    """A bench_cnn results file of one preset, by hand."""
    kinds = {"forward": 0.5, "input gradient": 0.5, "kernel gradient": 0.75, "dense": 0.25}
    steps = [{"name": "float32 det", "precision": "float32", "binarize": "det", "default": True,
              "plan": "whole XLA step, fused update, 8 steps per call", "seconds_per_step": 2.5, "of_floor": 0.8},
             {"name": "mixed_bfloat16 det", "precision": "mixed_bfloat16", "binarize": "det", "default": True,
              "plan": "whole XLA step, fused update, 8 steps per call", "seconds_per_step": 5.0, "of_floor": 0.5}]
    preset = {"binary_weights": 14_022_016, "kind_flops": {"forward": 6e10, "input gradient": 5.9e10,
                                                           "kernel gradient": 6e10, "dense": 3e9},
              "roofline": {"float32_kernels": kinds, "float32_xla": kinds, "mixed_bfloat16_kernels": {"forward": 1.0},
                           "mixed_bfloat16_xla": kinds, "stream_gbps": 28.0},
              "floor_seconds": {"float32": 2.0, "mixed_bfloat16": 2.5},
              "floor_backend": {"float32": "xla", "mixed_bfloat16": "xla"}, "steps": steps, "epochs": 500,
              "per_epoch": [{"precision": "float32", "binarize": "det", "seconds_per_epoch": 2_400.0,
                             "schedule_hours": 333.3},
                            {"precision": "mixed_bfloat16", "binarize": "det", "seconds_per_epoch": 4_700.0,
                             "schedule_hours": 652.8}]}
    paper = [{"precision": "float32", "peak_tflops": 494.7, "seconds_per_epoch": 0.4, "schedule_hours": 0.06},
             {"precision": "mixed_bfloat16", "peak_tflops": 989.4, "seconds_per_epoch": 0.2, "schedule_hours": 0.03}]
    return {**PROV, "tensorflow": "2.21.0", "batch_size": 50, "steps": 9, "warmup": 1, "rounds": 3,
            "other_processes_cores": [1.5, 1.6, 1.4], "loaded": True, "update_bytes_per_weight": 28,
            "cpu_flags": {"avx2": True, "avx512_bf16": bf16_kernels}, "bf16_kernels": bf16_kernels,
            "presets": {"cifar10": preset}, "gpu": "NVIDIA H100 SXM", "on_paper": {"cifar10": paper}}


def test_the_speed_rows_name_their_command_and_say_what_is_missing():
    text = speed.render_speed({"bench_train": None, "bench_cnn": cnn_results(),
                               "bench_infer_mnist": {**PROV, "runs": [infer_run(1), infer_run(2)]}})
    assert "| training step, `mnist` MLP | not measured yet: run `make bench-train` | |" in text
    assert ("batch 1: 0.100 ms against 1.500 ms (15.0x lower); batch 256: 16,000 against 8,000 images/s; "
            "weights held 32x smaller | `make bench-x`, CPU: T, 2 cores, 2026-12-07 |") in text
    assert ("| training, `cifar10`, float32, on this machine (extrapolated) | 2,400 s per epoch, 13.9 days for 500 "
            "epochs; on paper on an NVIDIA H100 SXM at its peak (an estimate): 0.4 s per epoch, 4 min |") in text
    assert "27.2 days" in text and "no bfloat16 instructions" in text
    assert "no bfloat16 instructions" not in speed.render_speed({"bench_cnn": cnn_results(bf16_kernels=True)})


def test_the_cnn_table_gives_each_kind_of_product_the_floor_and_the_steps_against_it():
    text = cnn.render_cnn(cnn_results())
    assert "| conv gradient wrt kernel | 60.0 | 750 ms, 80 GFLOP/s | 750 ms, 80 GFLOP/s |  | 750 ms, 80 GFLOP/s |" in text
    assert "| all products | 182.0 | 2,000 ms, 91 GFLOP/s | 2,000 ms, 91 GFLOP/s |  | 2,000 ms, 91 GFLOP/s |" in text
    assert "28 B × 14,022,016 weights at 28.0 GB/s streaming = 14.0 ms" in text
    assert ("| float32 det (as `bctrain train` runs it) | whole XLA step, fused update, 8 steps per call | 2.50 | "
            "1.25× | 1.00× |") in text
    assert "| mixed_bfloat16 det (as `bctrain train` runs it) | whole XLA step, fused update, 8 steps per call | " \
           "5.00 | 2.00× | 0.50× |" in text
    assert "**This CPU has no bfloat16 instructions**" in text and "**Measured on a loaded machine**" in text
    assert "| `cifar10` | mixed_bfloat16 | det | 4,700 | 500 | 27.2 days |" in text


def test_the_cnn_c_table_has_every_preset_and_the_float32_zca_note():
    entry = {"x_ms": 5.0, "pixels_ms": 9.0, "preprocessing_ms_per_image": 4.0}
    preset = {"preset": "cifar10", "binary_weights": 14_022_016, "weight_bytes": 1_755_584, "preprocess": "gcn_zca",
              "compile": {"source_bytes": 113_000_000, "seconds": 4.3, "text": 39_000_000},
              "native": {"scratch_bytes": 2_388_032}, "conv_rows": [608, 16, 8],
              "microcontroller": {"flash": 39_591_041, "ram": 1_374_968}, "verify_passed": True,
              "verify": {"c": {"max_diff_over_tol": 0.166}, "c_raw": {"max_diff_over_tol": 0.165}},
              "entry_points": {"batch1": entry, "batch16": {**entry, "preprocessing_ms_per_image": 1.6}},
              "seconds": {"train": 12.0, "bcexport onnx": 27.0, "bcexport c": 24.0, "bcexport verify": 61.0},
              "zca_float32": {"float32_blas": {"max_over_tol": 0.085, "samples_over_tol": 0},
                              "float32_sequential": {"max_over_tol": 0.08, "samples_over_tol": 0}}}
    text = ckernels.render_cnn_c({**PROV, "results": [preset, {**preset, "preset": "svhn", "preprocess": "gcn_lcn",
                                                               "microcontroller": {"skipped": "no arm-none-eabi-gcc"}}]})
    assert "| cifar10 | 14,022,016 | 1,755,584 B | 113,000,000 B | 4.3 s | 39,000,000 B | 2,388,032 B | 608, 16, 8 | " \
           "39,591,041 / 1,374,968 B |" in text
    assert "| no arm-none-eabi-gcc |" in text and "| PASSED | 0.166 | 0.165 | 5.00 ms | 9.00 ms | 4.00 / 1.60 ms | " \
                                                 "12, 27, 24, 61 |" in text
    assert text.count("a float32 ZCA would move the logits by up to 0.085") == 2


def test_the_bnn_table_gives_each_variant_its_mean_std_and_epochs():
    def variant(errors):
        runs = [{"test_error": e, "best_epoch": 10 + i, "seconds": 100.0} for i, e in enumerate(errors)]
        return {"test_error_mean": sum(errors) / len(errors), "test_error_std": 0.005 if len(errors) > 1 else None,
                "runs": runs}
    text = bnn.render({**PROV, "width": 256, "epochs": 30, "seeds": 2, "dataset": "mnist-sample",
                       "variants": {"binarynet": variant([0.1, 0.09]), "float": variant([0.08, 0.08])}})
    assert "3 × 256 hidden units, 30 epochs, on `mnist-sample`, 2 seeds per row" in text and "not** MNIST" in text
    assert "| BinaryNet (±1 weights and activations) | 9.50 % | 0.50 % | 10, 11 | 100 |" in text
    assert "| float (same net) | 8.00 % | 0.50 % | 10, 11 | 100 |" in text


def test_the_cnn_check_table_has_a_row_per_run_and_the_gaps_in_points():
    def run(test_error, binary=None):
        return {"test_error": test_error, "test_error_binary": binary, "selected_epoch": 9, "epochs": 10,
                "seconds_per_epoch": 31.4}
    runs = {"float": run(0.02), "det": run(0.0275), "stoch": run(0.03, 0.05)}
    text = cnn_check.render({**PROV, "images": 10000, "epochs": 10, "presets": {
        "svhn": {"runs": runs, "gaps": {"det_minus_float_pp": 0.75, "stoch_minus_det_pp": 0.25}}}})
    assert text.startswith("Measured by `make bench-x` on CPU: T, 2 cores, 2026-12-07.")
    assert "10,000 images" in text and ", 10 epochs;" in text
    assert "| `svhn` | det | 2.75 % |  | 9 of 10 | 31 |" in text
    assert "| `svhn` | stoch | 3.00 % | 5.00 % | 9 of 10 | 31 |" in text
    assert "`svhn`: det − float +0.75 pp, stoch − det +0.25 pp." in text
