"""The gate on binary activations (BinaryNet, PAPER.md §10): every hidden block's ±1 outputs, exactly.

For a deployment with binary activations, `bcexport verify` takes from each back end its logits and
the ±1 output of every hidden block (TensorFlow: the training code's Net; ONNX: the act<i> tensors of
each file, made outputs of an in-memory copy: `onnx_hidden_model`) and checks them block by block,
each fed the back end's own outputs of the block before (so one disagreement is found where it
arises, not in everything after it):

  the first block (real inputs): its bits equal the reference's decision on the exact product u
      (float64 of the float32 inputs; `bcexport.threshold`), except at ties: units whose u lies within
      δ of the threshold, where δ bounds how far a float32 sum of the same inputs in any order can be
      from the exact one, γ_n·Σ|x| (n the fan-in, γ_n = n·2^-24 / (1 − n·2^-24), Σ|x| over the unit's
      inputs: a conv's 3x3 patch, the largest of a pool window), plus, fed raw pixels, 16·Σ|x32 − x64|
      (the float32 preprocessing against its float64 definition, with verify's safety factor K).
      Back ends sum in different orders, so they may disagree there, and only there: counted as
      ties, never failed.
  every later block (±1 inputs): its bits equal the reference's integer thresholds on the back end's
      own bits of the block before, exactly: no tolerance, no ties.
  the output block: its logits against the reference's a ⊙ u + c on the back end's own last hidden
      bits (exact integers u), with verify's logit tolerance (`output_logits`).
A flipped weight bit, threshold or direction changes bits that their inputs fully determine, and fails.
"""
import numpy as np

from bcexport import ExportError, reference
from bcexport.pack import Deployment
from bcexport.tolerance import checked_noise, compare, noise_level, tolerance

U32 = 2.0 ** -24
K_PREPROCESS = 16
RULE = ("each hidden block fed the back end's own previous bits: first block equal to the exact decision "
        "except ties (|u - threshold| <= gamma_n * sum|x|, + 16 * sum|x32 - x64| fed pixels), later blocks "
        "exactly equal; logits against the output block on the back end's last hidden bits")


def describe(check: dict, n_samples: int) -> str:
    """One line for verify's table."""
    if "layers" not in check:
        return f"hidden outputs: {check['problem']}  FAIL"
    parts = [f"block {r['block']} {r['mismatches']} bits differ" + (f" ({r['ties']} ties)" if "ties" in r else "")
             for r in check["layers"]]
    return (", ".join(parts) + f"; {check['same_as_reference']}/{n_samples} samples with every hidden bit of the "
            f"reference  {'ok' if check['passed'] else 'FAIL'}")


def hidden_blocks(dep: Deployment) -> list:
    """Indices of the blocks with binary activations (all but the output block)."""
    return [i for i, b in enumerate(dep.blocks) if b.sign is not None]


def _patch_l1(blk, x) -> np.ndarray:
    """Σ|x| over each output's inputs, [N, *output shape without channels, 1]: the whole input of a
    dense block, the 3x3 patch of a conv (the largest in each pool window)."""
    a = np.abs(np.asarray(x, np.float64))
    if blk.kind == "dense":
        return a.reshape(len(a), -1).sum(axis=1)[:, None]
    s = reference.im2col3(a).sum(axis=-1, keepdims=True)
    return reference.max_pool2(s) if blk.pool else s


def first_block_slack(dep: Deployment, x, x_exact=None) -> np.ndarray:
    """δ of the module docstring, broadcastable against the first block's output."""
    blk = dep.blocks[0]
    x = np.asarray(x, np.float64).reshape((len(x),) + dep.input_shape)
    n = blk.fan_in
    gamma = n * U32 / (1 - n * U32)
    slack = gamma * _patch_l1(blk, x)
    if x_exact is not None:
        slack = slack + K_PREPROCESS * _patch_l1(blk, x - np.reshape(x_exact, x.shape))
    return slack


def first_block_product(dep: Deployment, x) -> np.ndarray:
    """The first block's u on float32 inputs, summed in float64 (exact for these sums: the float32
    values of x span fewer than 53 bits of every sum, barring inputs of widely different magnitudes)."""
    blk = dep.blocks[0]
    x = np.asarray(x).reshape((len(x),) + dep.input_shape).astype(np.float64)
    return reference.product(blk, blk.wb.astype(np.float64), x)


def check_blocks(dep: Deployment, x, acts, slack) -> dict:
    """Block by block, each fed the back end's own previous bits (module docstring): per hidden
    block its number of differing bits (`mismatches`) and, on the first, of ties; `passed`."""
    blocks, hidden = dep.blocks, hidden_blocks(dep)
    if len(acts) != len(hidden):
        return {"passed": False, "problem": f"{len(acts)} hidden outputs, expected {len(hidden)}"}
    layers, passed = [], True
    u0 = first_block_product(dep, x)
    for k, (i, got) in enumerate(zip(hidden, acts)):
        blk, got = blocks[i], np.asarray(got)
        u = u0 if k == 0 else reference.product(blk, blk.wb, np.asarray(acts[k - 1]))
        want = blk.sign.apply(u)
        if got.shape != want.shape:
            return {"passed": False, "problem": f"block {i}: outputs of shape {got.shape}, expected {want.shape}"}
        differ = want != got
        if k == 0:
            tie = blk.sign.margin(u) <= slack
            layers.append({"block": i, "mismatches": int(np.sum(differ & ~tie)), "ties": int(np.sum(differ & tie)),
                           "units_within_slack": int(np.sum(tie))})
        else:
            layers.append({"block": i, "mismatches": int(np.sum(differ))})
        passed &= layers[-1]["mismatches"] == 0
    return {"passed": bool(passed), "layers": layers}


def output_logits(dep: Deployment, last_acts, dtype=np.float64) -> np.ndarray:
    """The output block's a ⊙ u + c on the given ±1 outputs of the last hidden block, in `dtype`."""
    blk = dep.blocks[-1]
    weights = (blk.wb.astype(np.float32), blk.a.astype(dtype), blk.c.astype(dtype))
    return reference.apply_block(blk, weights, np.asarray(last_acts))


def same_as_reference(acts, ref_acts) -> int:
    """Samples whose every hidden bit equals the free-running reference's."""
    same = np.ones(len(ref_acts[0]), bool)
    for got, want in zip(acts, ref_acts):
        same &= np.all(np.asarray(got).reshape(want.shape) == want, axis=tuple(range(1, want.ndim)))
    return int(np.sum(same))


def onnx_hidden_model(model, n_hidden: int):
    """A copy of an ONNX model whose outputs are its logits and then act0, act1, ... (the ±1 tensors
    bcexport.tfmodel names), for the verification only."""
    import onnx
    from bcexport.tfmodel import act_name

    produced = {o for node in model.graph.node for o in node.output}
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for i in range(n_hidden):
        name = f"{act_name(i)}:0"
        if name not in produced:
            raise ExportError(f"ONNX model has no tensor {name} (the ±1 output of hidden block {i}); "
                              "export it again with `bcexport onnx`")
        copy.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return copy


def merge(checks) -> dict:
    """One `check_blocks` result of several chunks of samples: the counts added up."""
    problems = [c for c in checks if "layers" not in c]
    if problems:
        return problems[0]
    layers = [{key: sum(c["layers"][j][key] for c in checks) if key != "block" else layer["block"] for key in layer}
              for j, layer in enumerate(checks[0]["layers"])]
    return {"passed": all(c["passed"] for c in checks), "layers": layers,
            "same_as_reference": sum(c["same_as_reference"] for c in checks)}


def compare_backends(run_dir, dep: Deployment, todo, feeds, exact, labels, batch) -> tuple:
    """verify's (results, reference logits, noise per feed) with binary activations: each back
    end's hidden bits block by block, and its logits against the reference's output block on its own
    last hidden bits. The noise s is the output block's alone (float32 against float64 on the same
    bits). In chunks of samples, so that no back end's hidden outputs are held for the whole test set
    (a CIFAR-10 network's first block alone has 131,072 per image)."""
    missing = [b.name for b, _ in todo if b.hidden is None]
    if missing:
        raise ExportError(f"{run_dir}: binary activations, and back ends {', '.join(missing)} cannot give their "
                          "hidden outputs; remove them (C: issue 21 §3)")
    runs = {b.name: b.hidden(path, dep, run_dir, batch) for b, path in todo}
    step = reference.chunk_size(dep, np.float64)
    s, ref, got = 0.0, [], {b.name: ([], [], []) for b, _ in todo}  # logits, reference on own bits, checks
    for lo in range(0, len(feeds["x"]), step):
        rows = slice(lo, lo + step)
        free = {feed: reference.forward_taps(dep, xe[rows]) for feed, xe in exact.items()}
        last = free["x"][1][-1]
        s = max(s, noise_level(dep, None, output_logits(dep, last), output_logits(dep, last, np.float32)))
        ref.append(free["x"][0])
        for b, _ in todo:
            logits, acts = runs[b.name](feeds[b.feed][rows])
            x_exact = exact[b.feed][rows]
            slack = first_block_slack(dep, feeds["x"][rows], None if b.feed == "x" else x_exact)
            check = check_blocks(dep, x_exact, acts, slack)
            if "layers" in check:
                check["same_as_reference"] = same_as_reference(acts, free[b.feed][1])
            got[b.name][0].append(logits)
            got[b.name][1].append(output_logits(dep, acts[-1]) if "layers" in check else free[b.feed][0])
            got[b.name][2].append(check)
    noise = {feed: checked_noise(run_dir, feed, s) for feed in exact}
    results = {}
    for name, (logits, ref_b, checks) in got.items():
        ref_b = np.concatenate(ref_b)
        results[name] = compare(ref_b, np.concatenate(logits), tolerance(ref_b, s), labels)
        check = merge(checks)
        results[name].update(hidden=check, passed=results[name]["passed"] and check["passed"])
    return results, np.concatenate(ref), noise
