"""ONNX export (tf2onnx) of the folded ±1 inference network.

    export   model.onnx, model.raw.onnx and export.json
    packed   model.packed.onnx: 1-bit weight initializers unpacked in-graph
"""
