"""The paper's pieces (BinaryConnect, arXiv:1511.00363, Algorithm 1), pure functions first.

    arch       the architecture as plain data: layer specs, Glorot h and lr_scale (TensorFlow-free)
    binarize   det / stoch binarization with the straight-through estimator (§1-§3)
    losses     squared hinge loss on ±1 targets, error counts (§5)
    layers     binary dense / conv, the authors' BatchNorm, max-pool (tf.Modules)
    models     the network of a Config
    optim      Adam / SGD with the scaled, clipped step of binary weights; the LR schedule (§1, §5)
"""
