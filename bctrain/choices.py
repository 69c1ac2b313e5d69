"""Every named choice of a run, one table each: the CLI's choices, the config's validation and the
code that acts on a choice all read these tables (paper §1-§6 for the first three).

    BINARIZE        det | stoch | none: how the weights of the products are made, and how a run is evaluated
    BINARIZE_ACT    none | sign: the hidden activations (ReLU, or BinaryNet's ±1, arXiv:1602.02830)
    EVAL_MODES      real | binary: the weights a test pass uses (paper §2: stochastic runs are reported
                    with the real weights; deployed, they are ±1)
    OPTIMIZERS      adam | sgd
    UPDATE_KERNELS  auto | fused | xla: which code applies the optimizer's update (same arithmetic)
    BN_STATS        global | replica: BatchNorm's batch statistics under several replicas
    STRATEGIES      default | mirrored | multiworker: where the step runs (tf.distribute)

The precisions (`bctrain.step.precision.PRECISIONS`), datasets (`bctrain.data.registry.DATASETS`) and
preprocessing kinds (`bctrain.data.preprocess.KINDS`) are tables of their own modules, since each
entry carries code. TensorFlow-free (stdlib only), so that the config and the CLI load without it.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    help: str


@dataclass(frozen=True)
class Binarize(Choice):
    binary: bool        # the layers' weights are binarized in the products (False: the float baseline)
    eval_modes: tuple   # the evaluation passes of a run; the first selects the epoch and gives test_error


@dataclass(frozen=True)
class Activation(Choice):
    act: str            # the hidden blocks' activation after BatchNorm (bctrain.paper.arch.LayerSpec.act)


def describe(choices: dict) -> str:
    """'a (help) | b (help)' for a --help text, from each entry's `help` (a dataset's `title`)."""
    return " | ".join(f"{name} ({getattr(entry, 'help', None) or entry.title})" for name, entry in choices.items())


def check(kind: str, value, choices: dict):
    """Raise ValueError naming `kind` unless `value` is one of the table's names."""
    if value not in choices:
        raise ValueError(f"{kind} {value!r}: expected one of {', '.join(choices)}")
    return choices[value]


BINARIZE = {
    "det": Binarize("sign(w), sign(0) = +1", binary=True, eval_modes=("binary",)),
    "stoch": Binarize("+1 with probability hard_sigmoid(w)", binary=True, eval_modes=("real", "binary")),
    "none": Binarize("float baseline: w itself", binary=False, eval_modes=("real",)),
}

BINARIZE_ACT = {
    "none": Activation("real activations: ReLU after BatchNorm, as BinaryConnect", act="relu"),
    "sign": Activation("BinaryNet: sign after BatchNorm, sign(0) = +1; backward g·1{|x| <= 1}", act="sign"),
}

EVAL_MODES = {
    "real": Choice("the real latent weights"),
    "binary": Choice("the ±1 weights, sign(w)"),
}

OPTIMIZERS = {
    "adam": Choice("Adam as in Lasagne, the authors' code"),
    "sgd": Choice("plain SGD, no momentum"),
}

UPDATE_KERNELS = {
    "auto": Choice("fused on a CPU where the op builds, except a float32 XLA step of under 2 M weights"),
    "fused": Choice("one pass over memory, bctrain.step.fused_update; Adam on a CPU only"),
    "xla": Choice("the optimizer's TensorFlow ops, XLA-compiled with the step"),
}

BN_STATS = {
    "global": Choice("over the whole global batch, all-reduced, as on one device"),
    "replica": Choice("each replica over its own rows"),
}

STRATEGIES = {
    "default": Choice("one device"),
    "mirrored": Choice("several GPUs, or logical CPU devices"),
    "multiworker": Choice("hosts named in TF_CONFIG"),
}


def draw_algorithm(jit: bool) -> str:
    """The random-bit algorithm of stochastic binarization: threefry in an XLA-compiled step (a
    `mnist` stoch step took 270 ms against 392 ms with philox, AMD EPYC, loaded machine), philox
    otherwise (TensorFlow runs threefry only under XLA). A run keeps its algorithm: the
    generator's checkpointed state is the algorithm's own."""
    return "threefry" if jit else "philox"
