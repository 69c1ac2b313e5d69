"""Where a training step runs: one device, several (MirroredStrategy), several hosts (MWMS) (§1 step).

TensorFlow's distribution engine is the engine; this module chooses it and says who writes:
    default      the current device (the paper's setting)
    mirrored     tf.distribute.MirroredStrategy over the GPUs, or over logical CPU devices
    multiworker  tf.distribute.MultiWorkerMirroredStrategy over the hosts named in TF_CONFIG

`Config.batch_size` is the global batch: every worker feeds the same global batch (the order depends
only on (seed, epoch)) and replica r of R takes rows [r*n/R, (r+1)*n/R) of it (`slice_bounds`), so
each sample is used once per step and counted once in evaluation. The step (bctrain.step.build) averages
the loss over the global batch, all-reduces the gradients and applies the update once per variable
on every replica's copy; BatchNorm all-reduces its statistics (bctrain.paper.layers). Under multiworker
the chief (task "chief", else worker 0) writes the run directory; every other worker runs the same
loop in a private temporary directory that is deleted at the end (`worker_run_dir`). TF_CONFIG is
checked, and the other workers waited for with a time limit, by bctrain.step.cluster.
"""
import contextlib
import os
import shutil
import signal
import tempfile
import threading

import tensorflow as tf

from bccommon import runfiles
from bctrain.choices import STRATEGIES
from bctrain.config import ConfigError
from bctrain.step import cluster

_ONE_PER_PROCESS = {}


def slice_bounds(n, replicas, replica_id):
    """[start, end) of replica `replica_id`'s rows of a batch of n: contiguous, sizes differ by <= 1."""
    return replica_id * n // replicas, (replica_id + 1) * n // replicas


def replica_slice(x):
    """This replica's rows of the global batch `x` (all of it outside a multi-replica context)."""
    ctx = tf.distribute.get_replica_context()
    replicas = ctx.num_replicas_in_sync
    if replicas == 1:
        return x
    n = x.shape[0]
    if n is not None and n % replicas == 0:  # static size: the training batch
        size = n // replicas
        begin = [ctx.replica_id_in_sync_group * size] + [0] * (x.shape.rank - 1)
        return tf.slice(x, begin, [size] + [-1] * (x.shape.rank - 1))
    start, end = slice_bounds(tf.shape(x)[0], replicas, ctx.replica_id_in_sync_group)
    return x[start:end]


def _cpu_devices(n):
    """Split the CPU into n logical devices (only possible before TensorFlow starts its runtime)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError:
        if len(tf.config.list_logical_devices("CPU")) != n:
            raise ConfigError(f"replicas={n}: the CPU can only be split into logical devices before "
                              "TensorFlow starts; run in a fresh process") from None
    return [f"/cpu:{i}" for i in range(n)]


def make(name: str, replicas: int = 0):
    """The tf.distribute.Strategy called `name`; `replicas` devices for mirrored (0: every GPU, or
    the CPU as one device when there is no GPU; on a CPU-only machine, n logical CPU devices)."""
    if name not in STRATEGIES:
        raise ConfigError(f"strategy={name!r}: expected one of {', '.join(STRATEGIES)}")
    if replicas < 0:
        raise ConfigError(f"replicas={replicas}: expected 0 (all devices) or a number of devices")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker":
        if "multiworker" not in _ONE_PER_PROCESS:  # collectives are configured once per process
            _ONE_PER_PROCESS["multiworker"] = _multiworker(cluster.from_env())
        return _ONE_PER_PROCESS["multiworker"]
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if replicas > len(gpus):
            raise ConfigError(f"replicas={replicas}: this machine has {len(gpus)} GPUs")
        devices = [f"/gpu:{i}" for i in range(replicas or len(gpus))]
        return tf.distribute.MirroredStrategy(devices)
    # Logical CPU devices share one memory: sum on one device and copy back (deterministic). The
    # default, collective all-reduce, keys its ops by instance numbers that a later strategy in the
    # same process reuses, and a differently shaped run then fails on the shapes cached for them.
    return tf.distribute.MirroredStrategy(_cpu_devices(max(replicas, 1)),
                                          cross_device_ops=tf.distribute.ReductionToOneDevice())


def _multiworker(workers):
    """MultiWorkerMirroredStrategy once every worker answers: TensorFlow's own wait for them has no time
    limit and holds the interpreter lock, so no signal would get through (bctrain.step.cluster).
    TensorFlow then takes SIGTERM for its preemption notifier, which only logs it: the handler that
    was there before (the command line's, or the default: end the process) is put back."""
    cluster.wait_for_peers(workers, cluster.peer_timeout())
    sigterm = signal.getsignal(signal.SIGTERM)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    if sigterm is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, sigterm)
    return strategy


def is_chief(task_type, task_id, cluster: dict) -> bool:
    """The task that writes results: "chief" if the cluster has one, else worker 0 (or no cluster)."""
    if not task_type:
        return True
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and int(task_id) == 0


def task_writes_results(name: str) -> bool:
    """Whether this process writes results under strategy `name` (read from TF_CONFIG, no TensorFlow)."""
    if name != "multiworker":
        return True
    return cluster.from_env().writes_results


def writes_results(strategy) -> bool:
    resolver = strategy.cluster_resolver
    if resolver is None:
        return True
    return is_chief(resolver.task_type, resolver.task_id, resolver.cluster_spec().as_dict())


def check_batch(batch_size: int, strategy):
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ConfigError(f"batch_size={batch_size} is the global batch: it must be a multiple of the "
                          f"{replicas} replicas")


@contextlib.contextmanager
def worker_run_dir(strategy, run_dir: str, resume: bool):
    """`run_dir` for the task that writes results; for any other worker a private temporary copy
    (what a resume needs of `run_dir`, which must then be readable by every worker), deleted after."""
    if writes_results(strategy):
        yield run_dir
        return
    private = tempfile.mkdtemp(prefix="bctrain-worker-")
    try:
        target = os.path.join(private, "run")
        if resume:
            shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns(runfiles.LOCK, runfiles.TB_DIR))
        yield target
    finally:
        shutil.rmtree(private, ignore_errors=True)


def check_same_epoch(strategy, epoch: int):
    """Every worker must continue from the same epoch (a resume reads each worker's copy of the
    checkpoints): the mean of the epochs and of their squares agree only if all are equal."""
    value = tf.constant(float(epoch), tf.float64)
    per_replica = strategy.run(lambda: tf.stack([value, value * value]))
    mean, mean_square = strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None).numpy()
    if mean_square != mean * mean:
        raise ConfigError(f"the workers resumed from different epochs (this one from {epoch}, mean {mean:g}); "
                          "every worker must see the same run directory")


def record(name: str, strategy) -> dict:
    """What history.jsonl and metrics.json record of the strategy."""
    return {"strategy": name, "replicas": int(strategy.num_replicas_in_sync),
            "workers": cluster.from_env().size if name == "multiworker" else 1}
