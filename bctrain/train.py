"""The epoch loop (paper §5): train, validate, select at the best validation epoch, checkpoint.

Reads top to bottom: data, the run directory (locked: one trainer at a time), model and optimizer,
resume, then per epoch: set the learning rate, train, stop if anything is not finite, evaluate,
select (val_err <= best), log, checkpoint. The reported test error is the one at
the last epoch whose validation error was <= every earlier one. Stochastic runs are evaluated twice:
"real" (latent weights, the paper's convention) and "binary" (sign of the latent weights, deployed).
"""
import math
import os
import sys
import time

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from bccommon import atomic, machine, runfiles
from bctrain import choices
from bctrain.run import checkpoints, epoch_log, finite, leftovers, plots, resume as resuming, rundir, runlock
from bctrain.step import strategy as strategies
from bctrain.paper.arch import count_binary_weights
from bctrain.config import Config, ConfigError
from bctrain.data import cache, load_splits, pipeline, registry
from bctrain.paper.models import Net
from bctrain.paper.optim import Optimizer, lr_at_epoch
from bctrain.step.build import make_train_step, plan_for
from bctrain.step.evaluate import dataset_error_rate, make_eval_step
from bctrain.step.loop import make_train_loop, step_groups
from bctrain.step.plan import PlanError


def eval_modes(binarize: str) -> tuple:
    """Evaluation modes of a run; the first one is used for selection and `test_error`."""
    return choices.BINARIZE[binarize].eval_modes


class RunState(tf.Module):
    """Loop state saved with every checkpoint."""

    def __init__(self):
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.best_val = tf.Variable(math.inf, dtype=tf.float64)
        self.best_epoch = tf.Variable(0, dtype=tf.int64)


def device_name() -> str:
    """The device training runs on: the GPUs TensorFlow sees, else the CPU (bccommon.machine)."""
    gpus = tf.config.list_physical_devices("GPU")
    return machine.describe([tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus])


def check_input_shape(cfg: Config, image_shape: tuple):
    """An MLP takes the image flattened; a CNN takes it as height, width, channels."""
    image = tuple(image_shape) + ((1,) if len(image_shape) == 2 else ())
    if cfg.conv and tuple(cfg.input_shape) != image:
        raise ConfigError(f"input_shape={','.join(map(str, cfg.input_shape))}: the conv layers need the images' "
                          f"{','.join(map(str, image))} (height,width,channels)")
    if not cfg.conv and math.prod(cfg.input_shape) != math.prod(image):
        raise ConfigError(f"input_shape={','.join(map(str, cfg.input_shape))}: the images have "
                          f"{math.prod(image)} values ({'x'.join(map(str, image_shape))})")


def load_data(cfg: Config, data_dir):
    """The splits, their preprocessed arrays {split: (x [N, *input_shape], labels)} and the fitted
    preprocessing parameters (bctrain.data.preprocess; cached for the slow kinds)."""
    splits = load_splits(cfg.dataset, data_dir)
    check_input_shape(cfg, splits.image_shape)
    top = max(int(y.max(initial=0)) for y in (splits.y_train, splits.y_val, splits.y_test))
    if top >= cfg.n_classes:
        raise ConfigError(f"n_classes={cfg.n_classes}: {splits.name} has labels up to {top}")
    if len(splits.x_train) < cfg.batch_size:
        raise ConfigError(f"batch_size={cfg.batch_size} exceeds the {len(splits.x_train)} training samples")
    params, xs = cache.preprocessed(splits, cfg.preprocess, registry.get(splits.name).fit_on)
    arrays = {name: (xs[name].reshape((-1, *cfg.input_shape)), getattr(splits, f"y_{name}")) for name in xs}
    return splits, arrays, params


def epochs_without_improvement(history, key) -> int:
    """Epochs since `key` last fell strictly below every earlier value (the first epoch counts).

    Early stopping (`--patience`) counts strict improvements; selection keeps its `<=` rule."""
    best, since = None, 0
    for record in history:
        if best is None or record[key] < best:
            best, since = record[key], 0
        else:
            since += 1
    return since


def train(cfg: Config, run_dir: str, data_dir=None, resume=False, out=None, stop_after=None):
    """Run (or resume) the training described by `cfg` in `run_dir`; return the summary metrics.

    `stop_after` ends the session after that epoch, as an interruption would (None if so).
    `cfg.strategy` and `cfg.replicas` say where it runs (bctrain.step.strategy); a run may be
    resumed under another strategy or number of replicas (the global batch, and so the training, is
    the same; the sums are added in another order).
    """
    out = out or sys.stdout
    dist = strategies.make(cfg.strategy, cfg.replicas)  # first: devices and collectives precede TF's start
    tf.config.experimental.enable_op_determinism()
    tf.random.set_seed(cfg.seed)
    strategies.check_batch(cfg.batch_size, dist)
    if not strategies.writes_results(dist):
        out = open(os.devnull, "w")
    try:  # the step plan (the fused op may be built here): before anything is written
        plan = plan_for(cfg)
    except PlanError as e:
        raise ConfigError(str(e)) from None

    # -- data (loaded before the run directory is touched, so a bad input leaves nothing behind) --
    with strategies.worker_run_dir(dist, run_dir, resume) as run_dir:
        rundir.check(run_dir, cfg, resume)
        splits, arrays, params = load_data(cfg, data_dir)
        with runlock.hold(run_dir):  # checked again under the lock, before anything is written
            return _train(cfg, run_dir, splits, arrays, params, data_dir, resume, out, stop_after, dist, plan)


def _train(cfg, run_dir, splits, arrays, params, data_dir, resume, out, stop_after, dist, plan):
    # -- run directory: config and data identity (written, or checked on resume) ----------------
    changed_runtime = rundir.prepare(run_dir, cfg, resume, rundir.data_record(splits, params))
    x_train, y_train = arrays["train"]
    y_train_pm1 = pipeline.to_pm1(y_train, cfg.n_classes)
    val_batches = pipeline.eval_batches(*arrays["val"], cfg.eval_batch_size)
    test_batches = pipeline.eval_batches(*arrays["test"], cfg.eval_batch_size)
    steps_per_epoch = len(x_train) // cfg.batch_size

    # -- model, optimizer, checkpoint (restored on resume) --------------------------------------
    modes = eval_modes(cfg.binarize)
    net, opt, state, ckpt, history = _model(cfg, dist, run_dir, resume, modes, out)
    if resume:
        for line in changed_runtime:
            print(line, file=out)
        rundir.record_runtime(run_dir, cfg)
    leftovers.clean(run_dir, out)  # the run is accepted: remove what a killed one left (under the lock)
    if not os.path.isfile(os.path.join(run_dir, runfiles.PREPROCESS_NPZ)):  # a resume keeps it (same data)
        atomic.save_npz(os.path.join(run_dir, runfiles.PREPROCESS_NPZ), kind=np.array(cfg.preprocess), **params)
    step_strategy = dist if plan.replicated else None
    train_steps = make_train_loop(make_train_step(net, opt, plan, strategy=step_strategy), plan.per_call)
    eval_steps = {m: make_eval_step(net, m, plan, strategy=step_strategy) for m in modes}
    where = {**strategies.record(cfg.strategy, dist), "update_kernel": plan.update, "steps_per_call": plan.per_call,
             "step_plan": plan.describe()}
    writer = tf.summary.create_file_writer(os.path.join(run_dir, runfiles.TB_DIR))
    n_binary = count_binary_weights(net.specs)
    acts = "" if cfg.binarize_act == "none" else f", {cfg.binarize_act} activations"
    print(f"{cfg.preset} ({cfg.binarize}{acts}) on {splits.name}: {len(x_train)}/{len(arrays['val'][0])}/"
          f"{len(arrays['test'][0])} train/val/test, {n_binary:,} binary weights, {device_name()}, "
          f"strategy {cfg.strategy} ({where['replicas']} replica{'s' if where['replicas'] != 1 else ''}), "
          f"{plan.describe()}", file=out)
    print("step plan: " + "; ".join(plan.why), file=out)

    for epoch in range(int(state.epoch) + 1, cfg.epochs + 1):
        if cfg.patience and epochs_without_improvement(history, f"val_error_{modes[0]}") >= cfg.patience:
            print(f"validation error not below its best for {cfg.patience} epochs: stopping", file=out)
            break
        # -- learning rate: geometric decay once per epoch --------------------------------------
        lr = lr_at_epoch(cfg.lr_start, cfg.lr_end, cfg.epochs, epoch - 1)
        opt.lr.assign(lr)
        at_epoch_start = epoch_log.signs(net)

        # -- train one epoch --------------------------------------------------------------------
        start = time.perf_counter()
        batches = iter(pipeline.train_batches(x_train, y_train_pm1, cfg.batch_size, cfg.seed, epoch))
        losses, errors, before_last_step = _train_epoch(train_steps, batches, net, steps_per_epoch, plan.per_call,
                                                        cfg.batch_size, f"epoch {epoch}/{cfg.epochs}")
        finite.check_epoch(epoch, losses, net.variables + opt.variables, kept=_kept(state, epoch))
        loss_sum = float(tf.reduce_sum(finite.per_step(losses)))
        err_sum = int(tf.reduce_sum(finite.per_step(errors)))
        train_seconds = time.perf_counter() - start

        # -- evaluate and select ----------------------------------------------------------------
        record = {"epoch": epoch, "lr": lr, "train_loss": loss_sum / steps_per_epoch,
                  "train_error": err_sum / (steps_per_epoch * cfg.batch_size), **where}
        for m in modes:
            record[f"val_error_{m}"] = dataset_error_rate(eval_steps[m], val_batches)
            record[f"test_error_{m}"] = dataset_error_rate(eval_steps[m], test_batches)
        val = record[f"val_error_{modes[0]}"]
        record["selected"] = bool(val <= float(state.best_val))
        if record["selected"]:
            state.best_val.assign(val)
            state.best_epoch.assign(epoch)
            atomic.save_npz(os.path.join(run_dir, runfiles.BEST_NPZ), epoch=np.array(epoch), **net.weights_dict())
        record.update(seconds=time.perf_counter() - start, train_seconds=train_seconds,
                      samples_per_second=steps_per_epoch * cfg.batch_size / train_seconds)
        record.update(epoch_log.weight_statistics(net, before_last_step, at_epoch_start))

        # -- log and checkpoint -----------------------------------------------------------------
        history.append(record)
        rundir.write_history(run_dir, history)
        epoch_log.log_tensorboard(writer, record, net, run_dir)
        plots.save_all(run_dir, history, net.linear[0].w.numpy(), net.specs[0].h)
        print(epoch_log.epoch_line(record, modes), file=out, flush=True)
        state.epoch.assign(epoch)
        checkpoints.save(ckpt, os.path.join(run_dir, runfiles.CKPT_DIR), epoch)
        if stop_after is not None and epoch >= stop_after and epoch < cfg.epochs:
            return None

    return _finish(cfg, run_dir, splits, arrays, history, state, n_binary, data_dir, out, where, plan)


def _model(cfg, dist, run_dir: str, resume: bool, modes, out) -> tuple:
    """(net, opt, state, ckpt, history): made under the strategy's scope (mirrored variables, one
    random stream per replica), and on resume restored from the newest readable checkpoint (or
    refused before anything is written)."""
    with dist.scope():
        net = Net(cfg, seed=cfg.seed)
        opt = Optimizer(cfg.optimizer, net.binary_params(), net.other_params(), lr=cfg.lr_start,
                        beta1=cfg.beta1, beta2=cfg.beta2, eps=cfg.adam_eps, loss_scale=net.precision.loss_scaling)
    state = RunState()
    ckpt = tf.train.Checkpoint(net=net, opt=opt, state=state)
    history = []
    if resume:
        history = resuming.restore(ckpt, state, run_dir, keys=_record_keys(modes))
        if cfg.strategy == "multiworker":
            strategies.check_same_epoch(dist, int(state.epoch))
        print(f"resuming {run_dir} after epoch {int(state.epoch)}", file=out)
    return net, opt, state, ckpt, history


def _train_epoch(train_steps, batches, net, steps_per_epoch: int, per_call: int, batch_size: int, desc: str):
    """One epoch's steps, `per_call` per call and the last one alone, with a progress bar on a
    terminal: (per-call losses, per-call errors, the signs of the binary weights before the last step).
    The losses and errors stay tensors: reading them every call would stall the step queue."""
    losses, errors, before_last_step = [], [], None
    bar = tqdm(total=steps_per_epoch, desc=desc, unit="step", leave=False, disable=not sys.stderr.isatty(),
               file=sys.stderr)
    start, done, shown = time.perf_counter(), 0, 0
    for n in step_groups(steps_per_epoch, per_call):
        if done == steps_per_epoch - 1:
            before_last_step = epoch_log.signs(net)
        loss, n_wrong = train_steps(batches, n)
        losses.append(loss)
        errors.append(n_wrong)
        done += n
        bar.update(n)
        if not bar.disable and done >= shown + 20:
            shown = done
            bar.set_postfix(loss=f"{float(tf.reduce_mean(finite.per_step(losses))):.4f}",
                            samples_s=f"{done * batch_size / (time.perf_counter() - start):,.0f}")
    bar.close()
    return losses, errors, before_last_step


def _record_keys(modes) -> tuple:
    """The numbers every history record holds (what a resumed run reads back)."""
    return ("lr", "train_loss", "train_error", "seconds", "samples_per_second") + tuple(
        f"{split}_error_{m}" for m in modes for split in ("val", "test"))


def _kept(state, epoch: int) -> str:
    """What a run stopped during `epoch` still holds (for the NonFiniteError line)."""
    if epoch == 1:
        return "no epoch had finished, so no checkpoint or best.npz was written"
    return (f"the checkpoint of epoch {epoch - 1} and best.npz (epoch {int(state.best_epoch)}) are kept "
            "unchanged")


def _finish(cfg, run_dir, splits, arrays, history, state, n_binary, data_dir, out, where, plan) -> dict:
    modes = eval_modes(cfg.binarize)
    best = [r for r in history if r["epoch"] == int(state.best_epoch)]
    saved = rundir.saved_best_epoch(run_dir)
    if not best or saved != best[0]["epoch"]:
        raise ConfigError(f"{run_dir}: best.npz is from epoch {saved}, history selects epoch "
                          f"{int(state.best_epoch)}; the run directory is inconsistent")
    best = best[0]
    metrics = {
        "dataset": splits.name, "data_source": splits.source,
        "data_dir": os.path.abspath(data_dir) if data_dir else None,
        "preset": cfg.preset, "binarize": cfg.binarize, "binarize_act": cfg.binarize_act,
        "n_train": len(arrays["train"][0]), "n_val": len(arrays["val"][0]), "n_test": len(arrays["test"][0]),
        "binary_weights": n_binary, "epochs_run": len(history), "best_epoch": best["epoch"],
        "val_error": best[f"val_error_{modes[0]}"], "test_error": best[f"test_error_{modes[0]}"],
        "test_error_binary": best.get("test_error_binary"),
        "seconds_per_epoch": float(np.mean([r["seconds"] for r in history])),
        "samples_per_second": float(np.mean([r["samples_per_second"] for r in history])),
        "device": device_name(), "tensorflow_version": tf.__version__, **where, "step_plan_why": list(plan.why),
    }
    atomic.write_json(os.path.join(run_dir, runfiles.METRICS_JSON), metrics)
    print(f"best epoch {metrics['best_epoch']}: val {100 * metrics['val_error']:.2f}%  "
          f"test {100 * metrics['test_error']:.2f}%  ({run_dir}/metrics.json)", file=out)
    return metrics
