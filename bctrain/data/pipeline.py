"""tf.data input pipelines and ±1 targets (arXiv:1511.00363, §6; authors' squared hinge loss).

The squared hinge loss compares outputs with targets in {−1, +1}: `to_pm1` gives 2·onehot − 1.
Training order is a permutation that depends only on (seed, epoch), so a run resumed at epoch
e sees exactly the batches it would have seen without the interruption. Arrays held in memory
(MNIST) are gathered once per epoch in NumPy and sliced into batches by tf.data. Memory-mapped
arrays (SVHN's preprocessed training split is 7.4 GB), and arrays in memory above GATHER_BYTES,
are never copied whole: their batches are gathered in chunks of at most CHUNK_BYTES by a Python
generator when tf.data asks for them. A generator-fed dataset slowed the MNIST step by about 38 %
on the development machine (with one Python call per batch and with one per epoch alike), so only
those arrays pay it, where a convolutional step is long beside it.

Prefetching uses a fixed buffer with tf.data's autotuning off: on a 2-core CPU the autotuner's
background thread competes with the training step's compute threads and made some epochs' steps
markedly slower on the development machine (docs/BENCHMARKS.md).
"""

import numpy as np
import tensorflow as tf


def to_pm1(labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Labels int [N] -> float32 [N, n_classes]: +1 at the label, −1 elsewhere."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= n_classes)):
        raise ValueError(f"expected 1-d labels in 0..{n_classes - 1}, got shape {list(labels.shape)}")
    y_pm1 = -np.ones((len(labels), n_classes), dtype=np.float32)
    y_pm1[np.arange(len(labels)), labels] = 1.0
    return y_pm1


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of range(n) used for `epoch` of a run seeded with `seed`."""
    return np.random.default_rng([seed, epoch]).permutation(n)


PREFETCH = 2
CHUNK_BYTES = 64 << 20     # of x per Python call on memory-mapped (or very large) arrays
GATHER_BYTES = 2 << 30     # larger arrays in memory are gathered in chunks too (no second copy)


def _fixed_prefetch(data: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.prefetch(PREFETCH).with_options(options)


def train_batches(x: np.ndarray, y_pm1: np.ndarray, batch_size: int, seed: int, epoch: int) -> tf.data.Dataset:
    """Shuffled full batches of (x, y_pm1) for one epoch; the last partial batch is dropped."""
    if len(x) != len(y_pm1):
        raise ValueError(f"{len(x)} inputs but {len(y_pm1)} targets")
    if not 0 < batch_size <= len(x):
        raise ValueError(f"batch_size {batch_size} must be between 1 and the {len(x)} training samples")
    n_steps = len(x) // batch_size
    order = epoch_order(len(x), seed, epoch)[:n_steps * batch_size].reshape(n_steps, batch_size)
    if not isinstance(x, np.memmap) and x.nbytes <= GATHER_BYTES:
        return _fixed_prefetch(tf.data.Dataset.from_tensor_slices((_gather(x, order), _gather(y_pm1, order))))
    per_chunk = max(1, CHUNK_BYTES // max(1, batch_size * x[:1].nbytes))

    def chunks():
        for start in range(0, n_steps, per_chunk):
            idx = order[start:start + per_chunk]
            yield _gather(x, idx), _gather(y_pm1, idx)

    signature = (tf.TensorSpec((None, batch_size, *x.shape[1:]), tf.float32),
                 tf.TensorSpec((None, batch_size, *y_pm1.shape[1:]), tf.float32))
    data = tf.data.Dataset.from_generator(chunks, output_signature=signature)
    return _fixed_prefetch(data.flat_map(lambda xs, ys: tf.data.Dataset.from_tensor_slices((xs, ys))))


def _gather(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """a[idx] as float32 [*idx.shape, *a.shape[1:]] (idx: [batches, batch_size] row indices)."""
    return np.asarray(a[idx.reshape(-1)], np.float32).reshape(*idx.shape, *a.shape[1:])


def eval_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """(x, y) in order, in batches of `batch_size`; the last batch may be smaller."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} targets")
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} must be at least 1")
    return _fixed_prefetch(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size))
