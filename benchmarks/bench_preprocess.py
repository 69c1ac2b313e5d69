"""Time and memory of the CIFAR-10 and SVHN preprocessing at full size, on synthetic images.

gcn_zca: fit on 50,000 images of 32x32x3 (the authors' fit set), then apply to 60,000 (train,
validation and test). gcn_lcn: apply to `--lcn-images` images and extrapolate to SVHN's 630,420
(it has no fit and costs the same per image). The images are smooth random colour fields (random
5x5 grids upsampled, plus noise), uint8; the work does not depend on the values. Peak memory is the
process's maximum resident set size (`resource.getrusage`), images included.

Usage: python -m benchmarks.bench_preprocess   (part of make bench-cnn)
"""
import argparse
import os
import resource
import time

import numpy as np

from bctrain.data.preprocess import KINDS
from benchmarks import provenance
from benchmarks.tables.cnn import SVHN_IMAGES, render_preprocess

CHUNK = 5000


def images(n, seed=0) -> np.ndarray:
    out = np.empty((n, 32, 32, 3), np.uint8)
    rng = np.random.default_rng(seed)
    for i in range(0, n, CHUNK):
        k = min(CHUNK, n - i)
        coarse = rng.integers(0, 256, (k, 5, 5, 3)).astype(np.float32)
        fine = coarse.repeat(7, axis=1).repeat(7, axis=2)[:, :32, :32]
        out[i:i + k] = np.clip(fine + rng.normal(0, 12, fine.shape), 0, 255)
    return out


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fit-images", type=int, default=50_000)
    parser.add_argument("--apply-images", type=int, default=60_000)
    parser.add_argument("--lcn-images", type=int, default=20_000)
    parser.add_argument("--out", default="benchmarks/results/bench_preprocess.json", help="JSON results file")
    args = parser.parse_args(argv)
    x = images(max(args.fit_images, args.apply_images))
    zca = KINDS["gcn_zca"]
    params, fit_s = timed(lambda: zca.fit(x[:args.fit_images]))
    _, apply_s = timed(lambda: [zca.apply(x[i:i + CHUNK], params) for i in range(0, args.apply_images, CHUNK)])
    lcn = KINDS["gcn_lcn"]
    _, lcn_s = timed(lambda: [lcn.apply(x[i:i + CHUNK], {}) for i in range(0, args.lcn_images, CHUNK)])
    result = {"cpus": os.cpu_count(), "load_average": os.getloadavg(),
              "gcn_zca_fit_seconds": fit_s, "gcn_zca_fit_images": args.fit_images,
              "gcn_zca_apply_seconds": apply_s, "gcn_zca_apply_images": args.apply_images,
              "gcn_lcn_seconds": lcn_s, "gcn_lcn_images": args.lcn_images,
              "gcn_lcn_svhn_seconds_extrapolated": lcn_s / args.lcn_images * SVHN_IMAGES,
              "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}
    print(render_preprocess(provenance.write(args.out, result, "benchmarks.bench_preprocess", argv)))


if __name__ == "__main__":
    main()
