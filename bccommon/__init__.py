"""bccommon: what training and export share, and nothing else (TensorFlow-free, stdlib only).

    runfiles   the run-directory contract: every file name a run directory holds, defined once
    atomic     writes that land whole or not at all (temporary file, then rename)
    digests    SHA-256 of files, and the records export writes and verify checks
    machine    the machine a figure was measured on (CPU model and cores, or GPU)
"""
