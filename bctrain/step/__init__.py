"""The training step: the paper's step (the reference plan) and the faster arrangements of it.

Every arrangement gives the reference step's results bit for bit; which one runs is chosen in one
place from the configuration, device, precision and strategy (docs/DESIGN.md).

    steps         the step functions (whole-XLA, split, distributed), the eval step
    fused_update  the one-pass Adam update, a TensorFlow CPU op built from csrc/
    precision     the --precision table (float32, mixed_bfloat16, mixed_float16)
    loss_scale    dynamic loss scaling of mixed_float16
    strategy      tf.distribute strategies (default, mirrored, multiworker)
    cluster       TF_CONFIG checked whole, and the other workers waited for with a time limit
"""
