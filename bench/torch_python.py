"""Which Python interpreter the benchmarks run PyTorch with.

Shared by `optim_vs_torch.py` and `train_vs_torch.py`. The candidates are
`$TORCH_PYTHON` (when set) and then the interpreter running the benchmark. A
candidate that does not exist, or that cannot `import torch`, is skipped with
a line on stderr saying so, so a machine without PyTorch still gets the
downhill column instead of a crash. Tested by `bench/test_torch_python.py`.
"""
import os, shutil, subprocess, sys


def candidates(environ=None):
    """The interpreters to try, in order: $TORCH_PYTHON, then this one."""
    environ = os.environ if environ is None else environ
    out = []
    if environ.get("TORCH_PYTHON"):
        out.append(("TORCH_PYTHON", environ["TORCH_PYTHON"]))
    out.append(("the current interpreter", sys.executable))
    return out


def python_with_torch(environ=None, log=None):
    """The first candidate that can `import torch`, or None.

    Every skipped candidate is reported on `log` (stderr by default).
    """
    log = sys.stderr if log is None else log
    for origin, py in candidates(environ):
        # A bare name is looked up on PATH; a path must exist.
        exe = shutil.which(py) if os.sep not in py else (py if os.access(py, os.X_OK) else None)
        if exe is None:
            print(f"skipped {origin} ({py}): no such executable", file=log)
            continue
        try:
            ok = subprocess.run([exe, "-c", "import torch"], capture_output=True).returncode == 0
        except OSError as e:  # exists but cannot run (bad interpreter line, permissions)
            print(f"skipped {origin} ({py}): {e}", file=log)
            continue
        if ok:
            return exe
        print(f"skipped {origin} ({py}): cannot import torch", file=log)
    return None
