"""Results files as Markdown: one function per results file, TensorFlow-free (benchmarks.render).

Each `render(result) -> str` turns a results file of benchmarks/results/ into the Markdown that the
benchmark prints and that `make docs` writes into README.md and docs/, opening with the sentence
that names its command, machine, date and code version (benchmarks.provenance.line).

    train     make bench-train: the mnist training step against its roofline
    infer     make bench-infer: inference of an exported run, every back end
    ckernels  make bench-bgemm (the binary product kernel), make bench-cnn-c (the CNNs in C)
    cnn       make bench-cnn: CNN training feasibility, and the preprocessing at full size
    mnist     make results-mnist: the mnist recipe on the bundled sample
    bnn       make bnn-check: BinaryNet against BinaryConnect and float at a reduced width
    speed     the few speed figures README shows, from the train, infer and cnn results
"""
