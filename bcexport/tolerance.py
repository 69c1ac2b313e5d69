"""verify's logit tolerance and the comparison of one back end's logits with the reference (paper §9;
the formula and its reasons: bcexport.verify's docstring).

    scale = max(1, max_j |ref_j|),   tol = K · s · scale,   K = 16,   s >= 4u,   u = 2^-24
"""
import numpy as np

from bcexport import ExportError, reference

U32 = 2.0 ** -24
K_TOL = 16
NOISE_FLOOR = 4 * U32
# The measured tolerance must stay a float32 rounding bound: beyond this the check is refused.
MAX_RTOL = 1e-4


def logit_scale(ref) -> np.ndarray:
    """max(1, max_j |ref_j|) per sample."""
    return np.maximum(1.0, np.abs(ref).max(axis=1, initial=0.0))


def noise_level(dep, x, ref, ref32=None) -> float:
    """s: the largest deviation of the float32 reference pass on x (`ref32`, computed if not given)
    from `ref`, relative to the logit scale."""
    if ref32 is None:
        ref32 = reference.forward(dep, x, dtype=np.float32)
    dev = np.abs(ref32.astype(np.float64) - ref).max(axis=1, initial=0.0) / logit_scale(ref)
    return max(NOISE_FLOOR, float(dev.max(initial=0.0)))


def tolerance(ref, noise: float) -> np.ndarray:
    """Per-sample absolute tolerance [N]: K · s · max(1, max_j |ref_j|) (module docstring)."""
    return K_TOL * noise * logit_scale(ref)


def _finite_or_none(value):
    """JSON has no NaN or infinity: a non-finite figure is recorded as null."""
    return float(value) if np.isfinite(value) else None


def compare(ref, other, tol, labels) -> dict:
    """Logit and argmax agreement of one back end with the reference; accuracy over the first
    len(labels) rows (the test set; the rows after it are random probes)."""
    diff = np.abs(np.asarray(other, np.float64) - ref)
    diff[~np.isfinite(diff)] = np.inf  # a NaN logit is as far off as an infinite one
    top2 = np.sort(ref, axis=1)[:, -2:]
    tie = (top2[:, 1] - top2[:, 0]) <= 2 * tol
    disagree = other.argmax(axis=1) != ref.argmax(axis=1)
    within = bool(np.all(diff <= tol[:, None]))
    bad = int(np.sum(disagree & ~tie))
    return {"accuracy": float(np.mean(other[:len(labels)].argmax(axis=1) == labels)),
            "max_abs_logit_diff": _finite_or_none(diff.max(initial=0.0)),
            "max_diff_over_tol": _finite_or_none((diff.max(axis=1, initial=0.0) / tol).max(initial=0.0)),
            "non_finite_logits": int(np.sum(~np.isfinite(other))),
            "argmax_agreement": float(1.0 - np.mean(disagree)) if len(ref) else 1.0,
            "argmax_disagreements": bad, "tie_disagreements": int(np.sum(disagree & tie)),
            "logits_within_tol": within, "passed": within and bad == 0}


def checked_noise(run_dir: str, feed: str, s: float) -> float:
    """s, unless K·s exceeds MAX_RTOL: such a tolerance would no longer test parity (ExportError)."""
    if K_TOL * s > MAX_RTOL:
        raise ExportError(f"{run_dir}: float32 rounding noise of this network ({feed} input) is {s:.1e} of its "
                          f"logit scale; a tolerance of {K_TOL * s:.1e} (> {MAX_RTOL:.0e}) would not be a "
                          "parity check")
    return s
