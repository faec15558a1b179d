"""Packaging: ``python -m build`` makes a wheel that installs into a fresh virtual environment and runs."""

import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import synjax

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend (setuptools) is already here; nothing is downloaded
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True, text=True)  # fmt: skip
    (found,) = out.glob("synjax-*.whl")
    return found


def test_the_wheel_carries_the_version_in_one_place_and_every_subpackage(wheel):
    assert wheel.name.startswith(f"synjax-{synjax.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "synjax").rglob("__init__.py")}
    assert packages <= {Path(n).parent.as_posix() for n in names if n.endswith("__init__.py")}
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "synjax = synjax.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_wheel_installs_into_a_fresh_virtual_environment_and_runs(wheel, tmp_path):
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python, synjax_cli = env / "bin" / "python", env / "bin" / "synjax"
    # The dependencies (JAX, ...) come from this interpreter's site-packages, named in a .pth file: that works
    # whether this interpreter is a venv or the base one (system_site_packages=True would give the base
    # interpreter's, which lack JAX when the tests run in a venv). A folder named in a .pth file has its own .pth
    # files left unread, so an editable synjax there stays out; synjax itself comes from the wheel only.
    inner = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    (Path(inner) / "outer_site_packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True,
                   capture_output=True)  # fmt: skip
    where = subprocess.run([python, "-c", "import synjax; print(synjax.__file__)"], cwd=tmp_path, check=True,
                           capture_output=True, text=True).stdout  # fmt: skip
    assert str(env) in where, f"synjax imported from {where!r}, not from the wheel"
    version = subprocess.run([synjax_cli, "--version"], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert version.stdout.strip() == f"synjax {synjax.__version__}"
    usage = subprocess.run([synjax_cli, "--help"], cwd=tmp_path, check=True, capture_output=True, text=True)
    assert "experiments:" in usage.stdout and "stdp-q" in usage.stdout
