"""Loading TensorFlow without its start-up noise on stderr (absl, oneDNN and CUDA lines).

Importing TensorFlow prints a handful of lines from C++ before its logging is configured, so
TF_CPP_MIN_LOG_LEVEL cannot stop them ("All log messages before absl::InitializeLog() ...", oneDNN,
"Could not find cuda drivers"), and its first device query prints `E0000 ... failed call to cuInit`
on any machine without a GPU: lines a user reads as failures. Both happen once, in `import
tensorflow` and the first `list_physical_devices`, so `load_tensorflow` runs those two with file
descriptor 2 (where C++ writes) pointed at a temporary file. The captured text is dropped, or
written out if loading fails, so a real failure is never hidden. `verbose=True` shows everything
(TensorFlow's own default log level). Stdlib only until TensorFlow is imported.
"""
import contextlib
import os
import sys
import tempfile

QUIET_LOG_LEVEL = "1"  # after start-up: TensorFlow's warnings and errors, not its INFO lines


@contextlib.contextmanager
def stderr_captured():
    """Send file descriptor 2 to a temporary file for the block; replay it if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def load_tensorflow(verbose: bool = False):
    """Import TensorFlow and probe its devices, quietly unless `verbose`; return the module."""
    if verbose:
        import tensorflow as tf
        tf.config.list_physical_devices()
        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LOG_LEVEL)  # a user setting wins
    with stderr_captured():
        import tensorflow as tf
        tf.config.list_physical_devices()
    return tf
