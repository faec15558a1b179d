"""The virtual environments of the peers that the benchmark scripts run side by side (rejax, Sinabs, xylosim):
each made on first use under ``$SYNJAX_BENCH_VENVS`` (default ``~/.cache/synjax-bench``) and reused after."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(os.environ.get("SYNJAX_BENCH_VENVS", Path.home() / ".cache" / "synjax-bench"))


def peer_python(name: str, *installs: list[str]) -> Path:
    """The python of the venv ``ROOT / name``, made if absent by ``python -m venv`` and one ``pip install`` per
    argument list of ``installs`` (in order: e.g. a last ``["--no-deps", "pkg"]``)."""
    venv = ROOT / name
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"making {venv}: " + "; ".join("pip install " + " ".join(a) for a in installs) + " ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        for args in installs:
            subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True)
    return python


def clean_env() -> dict[str, str]:
    """This process's environment without what would leak into a peer's interpreter (XLA flags, PYTHONPATH)."""
    return {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PYTHONPATH")}
