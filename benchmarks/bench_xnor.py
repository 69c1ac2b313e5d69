"""Speed of the XNOR-popcount blocks of the BinaryNet C (bcnn_bnn.h, issue 21 §4) against their roofline.

On the hidden dense shapes of the `mnist-bnn` preset (K x N = 4096 x 4096; --width to change it),
at M = 1 (batch-1 latency) and M = 16 (one tile), one thread, bcnn_xnor_sign built by gcc -O2 for
each path this CPU runs (portable, and `-march=native`: AVX2 here, AVX-512 VPOPCNTDQ where the CPU
has it), paths interleaved over --rounds rounds (one process each), the median reported. Times are
this thread's CPU time, and the clock is measured the same way (a chain of dependent additions),
so that a loaded machine's waits are not counted.

The roofline is the hardware step of the path, per core and cycle, whatever the kernel spends on
it: one XOR + popcount + add of a full vector register of weights per cycle (issue 21 §4 names
the 512-bit step of AVX-512 VPOPCNTDQ). On AVX2 that is 256 weights per cycle, on AVX-512 512,
for the portable SWAR code one 64-bit word. AVX2 has no popcount instruction: its kernel spends
107 vector operations per 16 steps (a carry-save-adder tree and nibble look-ups, bcnn_xnor_x86.h)
and Zen 3 issues at most 4 per cycle, so that kernel's own bound is 4 * 16 / 107 steps per cycle,
60 % of the roofline.

Usage: python -m benchmarks.bench_xnor [--width 4096] [--rounds 5] [--seconds 0.5] [--out PATH]
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bccommon import machine
from bcexport.c.csrc import CSRC

SOURCE = Path(__file__).with_name("bench_xnor.c")
FLAGS = {"portable": ("-DBCNN_PORTABLE",), "native": ("-march=native",)}
STEP_BITS = {"avx512": 512, "avx2": 256, "neon": 128, "portable": 64}   # weights per step of each path


def build(tmp: Path, name: str) -> Path:
    exe = tmp / f"bench_xnor_{name}"
    subprocess.run(["gcc", "-std=c99", "-O2", *FLAGS[name], f"-I{CSRC}", str(SOURCE), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    return exe


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=4096, help="K = N of the hidden block (default 4096)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="CPU seconds per timing")
    parser.add_argument("--out", help="JSON results file (default: print only)")
    args = parser.parse_args(argv)
    shapes = [(1, args.width, args.width), (16, args.width, args.width)]
    with tempfile.TemporaryDirectory(prefix="bench-xnor-") as tmp:
        exes = {name: build(Path(tmp), name) for name in FLAGS}
        clocks, times, paths = [], {}, {}
        for _ in range(args.rounds):
            clocks.append(float(subprocess.run([str(exes["native"]), "clock"], capture_output=True, text=True,
                                               check=True).stdout.split()[-1]))
            for name, exe in exes.items():
                for m, k, n in shapes:
                    out = subprocess.run([str(exe), "time", str(m), str(k), str(n), str(args.seconds)],
                                         capture_output=True, text=True, check=True).stdout.split()
                    paths[name] = out[0]
                    times.setdefault((name, m), []).append(float(out[1]))
    ghz = statistics.median(clocks)
    rows = []
    for (name, m), us in times.items():
        t = statistics.median(us)
        per_cycle = m * args.width * args.width / (t * 1e3 * ghz)
        rows.append({"build": name, "path": paths[name], "M": m, "K": args.width, "N": args.width,
                     "us_per_call": round(t, 2), "weights_per_cycle": round(per_cycle, 1),
                     "roofline_weights_per_cycle": STEP_BITS[paths[name]],
                     "of_roofline": round(per_cycle / STEP_BITS[paths[name]], 3)})
    result = {"cpu": machine.describe(), "clock_ghz": ghz, "rounds": args.rounds, "rows": rows,
              "command": "python -m benchmarks.bench_xnor " + " ".join(argv if argv is not None else sys.argv[1:])}
    print(f"{result['cpu']}; clock {ghz:.2f} GHz (CPU time, median of {args.rounds}); one thread")
    for r in rows:
        print(f"{r['build']:9s} {r['path']:9s} M={r['M']:<3d} {r['K']}x{r['N']}: {r['us_per_call']:9.2f} us  "
              f"{r['weights_per_cycle']:6.1f} weights/cycle  {100 * r['of_roofline']:5.1f} % of the roofline, "
              f"one {r['roofline_weights_per_cycle']}-bit step per cycle")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
