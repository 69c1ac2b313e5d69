"""What an epoch reports: its console line, TensorBoard events, and the weight statistics of
history.jsonl (larq's flip ratio: the fraction of binary weights whose sign changed)."""
import os

import numpy as np
import tensorflow as tf

from bccommon import runfiles


def signs(net) -> list:
    return [p.w.numpy() >= 0 for p in net.binary_params()]


def weight_statistics(net, before_last_step, at_epoch_start) -> dict:
    """Per binary layer: the flip ratio (larq's diagnostic: the fraction of binary weights whose sign
    changed in the epoch's last step), the same over the whole epoch, and the fraction at ±h."""
    if not net.binary_params():
        return {}
    after = signs(net)
    return {"flip_ratio": [float(np.mean(a != b)) for a, b in zip(after, before_last_step)],
            "flip_ratio_epoch": [float(np.mean(a != b)) for a, b in zip(after, at_epoch_start)],
            "at_bound": [float(np.mean(np.abs(p.w.numpy()) >= p.h)) for p in net.binary_params()]}


def log_tensorboard(writer, record: dict, net, run_dir: str):
    """The epoch's figures and first-layer weights as TensorBoard events; a write error (a full
    disk) is an OSError like any other file of the run directory."""
    try:
        with writer.as_default(step=record["epoch"]):
            for key, value in record.items():
                if isinstance(value, float):
                    tf.summary.scalar(key, value)
            tf.summary.histogram("w0", net.linear[0].w)
        writer.flush()
    except tf.errors.OpError as exc:
        raise OSError(f"{os.path.join(run_dir, runfiles.TB_DIR)}: events not written ({exc.message})") from None


def epoch_line(r: dict, modes) -> str:
    errors = "  ".join(f"val {m} {100 * r[f'val_error_{m}']:.2f}%  test {m} {100 * r[f'test_error_{m}']:.2f}%"
                       for m in modes)
    mark = " *" if r["selected"] else ""
    return (f"epoch {r['epoch']:4d}  lr {r['lr']:.2e}  loss {r['train_loss']:.4f}  train {100 * r['train_error']:.2f}%"
            f"  {errors}  {r['samples_per_second']:,.0f} samples/s  {r['seconds']:.1f}s{mark}")
