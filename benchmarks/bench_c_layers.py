"""Where the time of the generated C goes: each statement of its forward(), timed (paper §9).

Reads RUN_DIR/c/bcnn_model.c (from `bcexport c`), wraps every runtime call of forward() (the conv
products, pools, affines, copies and dense products of each block) in a clock, builds it with gcc
-O2 -march=native (or --flags) and runs --calls calls of --batch random float32 inputs, after a few
untimed ones. Prints, per statement, the median milliseconds per image and its share of the total.
One thread; the clock is the thread's CPU time, so that time spent waiting for a core on a shared
machine is not counted (contention for the core's caches and units still is). The clock calls add
a few hundred nanoseconds per statement. The pixel entry point and its preprocessing arrays are
left out of the build. With --callgrind, instead counts the instructions of each statement over one call under
valgrind (repeatable on a loaded machine; not for paths valgrind cannot run, e.g. AVX-512).

Usage: python -m benchmarks.bench_c_layers RUN_DIR [--calls N] [--batch M] [--flags "..."] [--callgrind]
"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bccommon import machine

PROLOGUE = """#define _POSIX_C_SOURCE 200112L
#include <time.h>
static double prof_t[PROF_N];
static double prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
"""
MAIN = """
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv)
{
    int calls = atoi(argv[1]), batch = atoi(argv[2]);
    float *x = malloc(sizeof(float) * (size_t)batch * UPREFIX_INPUT_SIZE);
    float *y = malloc(sizeof(float) * (size_t)batch * UPREFIX_N_CLASSES);
    void *s = NULL;
    if (x == NULL || y == NULL || posix_memalign(&s, 64, UPREFIX_SCRATCH_BYTES) != 0)
        return 1;
    unsigned r = 12345u;
    for (long i = 0; i < (long)batch * UPREFIX_INPUT_SIZE; ++i) {
        r = r * 1103515245u + 12345u;
        x[i] = (float)((int)(r >> 16) % 2001 - 1000) / 500.0f;
    }
    for (int c = 0; c < 3 && calls > 1; ++c)
        lprefix_predict(x, batch, y, s, UPREFIX_SCRATCH_BYTES);
    for (int c = 0; c < calls; ++c) {
        for (int i = 0; i < PROF_N; ++i)
            prof_t[i] = 0.0;
        lprefix_predict(x, batch, y, s, UPREFIX_SCRATCH_BYTES);
        for (int i = 0; i < PROF_N; ++i)
            printf("%s%.9f", i ? " " : "", prof_t[i]);
        printf("\\n");
    }
    return 0;
}
"""
CALL = re.compile(r"^(\s*)(bcnn_\w+)\((.*)\);$")


def instrument(source: str, prefix: str, clock: bool):
    """(program text, [statement labels]): forward()'s runtime calls wrapped in a clock (or, for
    callgrind, in functions of their own, whose inclusive cost callgrind reports)."""
    # the preprocessing (its arrays and the pixel entry point) is not timed: leave it out of the build
    source = re.sub(r"\nstatic const [\w ]+ pre_\w+\[[^=]*= \{.*?\n\};", "\n", source, flags=re.S)
    source = re.sub(r"\nint \w+_predict_pixels\(.*?\n\}\n", "\n", source, flags=re.S)
    # BinaryNet's forward() only calls forward_hidden(), which holds the blocks
    opening = "static void forward_hidden(" if "static void forward_hidden(" in source else "static void forward("
    head, rest = source.split(opening, 1)
    body, tail = rest.split("\n}\n", 1)
    labels, out, wrappers = [], [], []
    block = -1
    for line in body.split("\n"):
        m = CALL.match(line)
        if not m:
            out.append(line)
            continue
        ind, fn, args = m.groups()
        w = re.search(r"block(\d+)_w", args)
        block = int(w.group(1)) if w else block
        i = len(labels)
        labels.append(f"block {block} {fn.replace('bcnn_', '')}")
        if clock:
            out.append(f"{ind}{{ double t0_ = prof_now(); {fn}({args}); prof_t[{i}] += prof_now() - t0_; }}")
        else:
            out.append(f"{ind}prof_{i}(); {fn}({args});")
            wrappers.append(f"__attribute__((noinline)) void prof_{i}(void);\n"
                            f"__attribute__((noinline)) void prof_{i}(void) {{ __asm__ volatile(\"\"); }}")
    # callgrind: a marker call before each statement; the cost between markers is the statement's
    text = (PROLOGUE.replace("PROF_N", str(max(1, len(labels)))) + "\n".join(wrappers) + "\n" + head
            + opening + "\n".join(out) + "\n}\n" + tail
            + MAIN.replace("PROF_N", str(max(1, len(labels)))).replace("UPREFIX_", prefix.upper() + "_")
            .replace("lprefix_", prefix + "_"))
    return text, labels


def build(c_dir: Path, flags, clock: bool, tmp: Path):
    facts_prefix = re.search(r"int (\w+)_predict\(", (c_dir / "bcnn_model.h").read_text()).group(1)
    text, labels = instrument((c_dir / "bcnn_model.c").read_text(), facts_prefix, clock)
    src = tmp / "prof.c"
    src.write_text(text)
    exe = tmp / "prof"
    subprocess.run(["gcc", "-std=c99", *flags, "-g", f"-I{c_dir}", str(src), "-o", str(exe), "-lm"], check=True)
    return exe, labels, facts_prefix


def timed(exe, labels, calls, batch):
    out = subprocess.run([str(exe), str(calls), str(batch)], capture_output=True, text=True, check=True).stdout
    t = np.array([[float(v) for v in line.split()] for line in out.strip().splitlines()])
    med = np.median(t, axis=0) * 1e3 / batch
    total = float(np.median(t.sum(axis=1))) * 1e3 / batch
    return [(lab, float(v), float(v) / total) for lab, v in zip(labels, med)], total


def counted(exe, labels, batch, tmp, prefix):
    """Instructions between consecutive prof_i markers, from callgrind's per-call trace."""
    if not shutil.which("valgrind"):
        raise SystemExit("bench_c_layers: valgrind not found")
    out = tmp / "cg.out"
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
                    f"--toggle-collect={prefix}_predict", "--dump-before=prof_*", str(exe), "1", str(batch)],
                   capture_output=True, check=True)
    dumps = sorted(tmp.glob("cg.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    totals = []
    for p in dumps:
        m = re.search(r"^totals:\s+(\d+)", p.read_text(), re.M) or re.search(r"^summary:\s+(\d+)", p.read_text(), re.M)
        totals.append(int(m.group(1)) if m else 0)
    final = out.read_text() if out.exists() else ""
    m = re.search(r"^totals:\s+(\d+)", final, re.M) or re.search(r"^summary:\s+(\d+)", final, re.M)
    totals.append(int(m.group(1)) if m else 0)
    counts = totals[1:len(labels) + 1]   # dump k (before prof_k) holds statement k-1's cost
    total = sum(counts)
    return [(lab, c / batch, c / total) for lab, c in zip(labels, counts)], total / batch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--flags", default="-O2 -march=native")
    parser.add_argument("--callgrind", action="store_true", help="count instructions instead of timing")
    args = parser.parse_args(argv)
    c_dir = Path(args.run_dir) / "c"
    if not (c_dir / "bcnn_model.c").is_file():
        print(f"bench_c_layers: error: {c_dir}/bcnn_model.c not found: run `bcexport c` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-c-layers-") as tmp:
        tmp = Path(tmp)
        exe, labels, prefix = build(c_dir, args.flags.split(), not args.callgrind, tmp)
        rows, total = counted(exe, labels, args.batch, tmp, prefix) if args.callgrind else \
            timed(exe, labels, args.calls, args.batch)
    unit = "instructions" if args.callgrind else "ms"
    print(f"{args.run_dir}: gcc {args.flags}, batch {args.batch}, {machine.cpu_model()}; per image, "
          f"{'one call under callgrind' if args.callgrind else f'median of {args.calls} calls'}")
    print(f"| statement | {unit} per image | share |\n|---|---|---|")
    for lab, v, share in rows:
        print(f"| {lab} | {v:,.0f} | {100 * share:.1f} % |" if args.callgrind else
              f"| {lab} | {v:.3f} | {100 * share:.1f} % |")
    print(f"| total | {total:,.0f} | |" if args.callgrind else f"| total | {total:.3f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
