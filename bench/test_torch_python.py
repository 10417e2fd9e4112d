#!/usr/bin/env python3
"""Tests for torch_python.py: `python3 bench/test_torch_python.py`.

A missing `$TORCH_PYTHON` (for instance another machine's virtual environment)
must be skipped with a visible line, not crash the benchmark.
"""
import io, os, stat, sys, tempfile, unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_python import candidates, python_with_torch


def fake_python(folder, exit_code):
    """An executable that exits with `exit_code` whatever it is asked."""
    path = os.path.join(folder, f"python-exit-{exit_code}")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexit {exit_code}\n")
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


class TorchPython(unittest.TestCase):
    def test_without_torch_python_only_this_interpreter_is_tried(self):
        self.assertEqual([py for _, py in candidates({})], [sys.executable])

    def test_a_missing_torch_python_is_skipped_visibly(self):
        log = io.StringIO()
        missing = "/nonexistent/torchenv/bin/python"
        with tempfile.TemporaryDirectory() as d:
            good = fake_python(d, 0)
            # Pretend the current interpreter has torch, so the fallback is visible.
            real = sys.executable
            sys.executable = good
            try:
                got = python_with_torch({"TORCH_PYTHON": missing}, log)
            finally:
                sys.executable = real
        self.assertEqual(got, good)
        self.assertIn(f"skipped TORCH_PYTHON ({missing}): no such executable", log.getvalue())

    def test_a_missing_bare_name_is_skipped(self):
        log = io.StringIO()
        python_with_torch({"TORCH_PYTHON": "no-such-python-here"}, log)
        self.assertIn("skipped TORCH_PYTHON (no-such-python-here): no such executable", log.getvalue())

    def test_torch_python_is_preferred_when_it_has_torch(self):
        with tempfile.TemporaryDirectory() as d:
            good = fake_python(d, 0)
            self.assertEqual(python_with_torch({"TORCH_PYTHON": good}, io.StringIO()), good)

    def test_candidates_without_torch_give_none_and_say_why(self):
        log = io.StringIO()
        with tempfile.TemporaryDirectory() as d:
            bad = fake_python(d, 1)
            real = sys.executable
            sys.executable = bad
            try:
                got = python_with_torch({"TORCH_PYTHON": bad}, log)
            finally:
                sys.executable = real
        self.assertIsNone(got)
        self.assertEqual(log.getvalue().count("cannot import torch"), 2)


if __name__ == "__main__":
    unittest.main()
