"""Loading TensorFlow without its start-up noise on stderr (absl, oneDNN and CUDA lines), and
keeping its C++ side's log lines off stderr after that.

Importing TensorFlow prints a handful of lines from C++ before its logging is configured, so
TF_CPP_MIN_LOG_LEVEL cannot stop them ("All log messages before absl::InitializeLog() ...", oneDNN,
"Could not find cuda drivers"), and its first device query prints `E0000 ... failed call to cuInit`
on any machine without a GPU: lines a user reads as failures. Both happen once, in `import
tensorflow` and the first `list_physical_devices`, so `load_tensorflow` runs those two with file
descriptor 2 (where C++ writes) pointed at a temporary file. The captured text is dropped, or
written out if loading fails, so a real failure is never hidden (not after Ctrl-C: the user knows
why it stopped). After start-up, TF_CPP_MIN_LOG_LEVEL=3 keeps TensorFlow's runtime warnings and
errors off stderr: a failing op prints two `W0000 ... OP_REQUIRES failed` lines before the
exception that bctrain turns into its one line, and kernels print lines such as `E0000 ... oneDNN
supports DT_HALF only on platforms with AVX-512` in successful runs. `verbose=True` shows everything
(TensorFlow's own default log level); a TF_CPP_MIN_LOG_LEVEL the user set wins. Stdlib only until
TensorFlow is imported.
"""
import contextlib
import os
import sys
import tempfile

QUIET_LOG_LEVEL = "3"  # after start-up: only TensorFlow's fatal lines (errors reach Python as exceptions)


@contextlib.contextmanager
def stderr_captured():
    """Send file descriptor 2 to a temporary file for the block; replay it if the block raises an
    error (not on Ctrl-C or SIGTERM, KeyboardInterrupt: what was captured does not explain those)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):
                sys.stderr.flush()
                os.dup2(saved, 2)
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def quiet_logging():
    """Keep TensorFlow's C++ log lines below fatal off stderr (before it is imported; a user's
    TF_CPP_MIN_LOG_LEVEL wins)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LOG_LEVEL)


def load_tensorflow(verbose: bool = False):
    """Import TensorFlow and probe its devices, quietly unless `verbose`; return the module."""
    if verbose:
        import tensorflow as tf
        tf.config.list_physical_devices()
        return tf
    quiet_logging()
    with stderr_captured():
        import tensorflow as tf
        tf.config.list_physical_devices()
    # TensorFlow's Python warnings too (e.g. "triggered tf.function retracing", which the benchmarks
    # cause on purpose by building one step per plan); errors still show.
    tf.get_logger().setLevel("ERROR")
    return tf
