"""Stopping a run whose loss or weights are no longer finite (paper §5: selection needs numbers).

A NaN validation error compares false with every earlier one, and a NaN or infinite weight makes
every later epoch meaningless, so the epoch loop checks once per epoch, after the last step and
before anything of the epoch is evaluated, selected, logged or checkpointed: the last checkpoint and
best.npz stay those of the last finite epoch. The check is one reduction over the per-step loss
tensors the loop keeps anyway and over every variable; reading each step's loss, or a
`tf.debugging` check inside the step, would stall the queue of asynchronously dispatched steps.
Only on failure are the per-step losses read, to name the first step whose loss is not finite.
"""
import numpy as np
import tensorflow as tf


class NonFiniteError(RuntimeError):
    """Training produced a NaN or infinite loss or variable (one-line message naming epoch and step)."""


def _float_variables(variables) -> list:
    return [v for v in variables if v.dtype.is_floating]


def per_step(values: list):
    """The per-step values of an epoch as one 1-d tensor: `values` holds, in order, one scalar per
    step or one 1-d tensor per call of several steps (bctrain.step.loop.make_train_loop)."""
    return tf.concat([tf.reshape(v, [-1]) for v in values], axis=0)


def all_finite(losses: list, variables) -> bool:
    """True if every per-step loss and every floating-point variable is finite (one device read).

    `losses`: as for `per_step`."""
    checks = [tf.reduce_all(tf.math.is_finite(per_step(losses)))]
    checks += [tf.reduce_all(tf.math.is_finite(v)) for v in _float_variables(variables)]
    return bool(tf.reduce_all(tf.stack(checks)))


def first_nonfinite_step(losses: list):
    """1-based index of the first step whose loss is NaN or infinite; None if there is none."""
    bad = np.flatnonzero(~np.isfinite(per_step(losses).numpy()))
    return int(bad[0]) + 1 if bad.size else None


def nonfinite_variables(variables) -> list:
    """Names of the floating-point variables holding a NaN or an infinity."""
    return [v.name for v in _float_variables(variables) if not np.all(np.isfinite(v.numpy()))]


def check_epoch(epoch: int, losses: list, variables, kept: str):
    """Raise NonFiniteError naming the epoch and the first bad step unless all is finite.

    `kept` says what the run directory still holds (the last finite checkpoint and best.npz)."""
    if all_finite(losses, variables):
        return
    steps = int(per_step(losses).shape[0])
    step = first_nonfinite_step(losses)
    if step is not None:
        value = float(per_step(losses)[step - 1])
        where = f"training loss {value} at epoch {epoch}, step {step} of {steps}"
    else:  # every loss finite: the last update made the variables non-finite
        names = nonfinite_variables(variables)
        where = (f"non-finite {', '.join(names[:3])}{' ...' if len(names) > 3 else ''} after epoch {epoch}, "
                 f"step {steps} of {steps}")
    raise NonFiniteError(f"training stopped: {where}; {kept}; a smaller learning rate (--lr-start, "
                         "--lr-end) or another --seed may train")
