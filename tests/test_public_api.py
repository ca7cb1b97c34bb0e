"""The public surface: every name in signals.__all__ resolves; importing signals is cheap."""

from __future__ import annotations

import subprocess
import sys

import signals


def test_every_exported_name_resolves():
    for name in signals.__all__:
        assert getattr(signals, name) is not None, name


def test_import_does_not_load_the_heavy_stack():
    code = "import signals, sys; print(any(m.split('.')[0] in {'lightgbm', 'sklearn', 'mlflow'} for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
