"""One namespace (#14 item 4): the top-level ``transforms/`` folder is installed and imported as
``bfly_cli.transforms``; nothing named ``transforms`` is installed, so a user's own
``transforms.py`` cannot shadow it. ``python -m bfly_cli`` runs the CLI.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bfly_cli import transforms

ROOT = Path(__file__).resolve().parents[1]


def test_transforms_live_inside_the_package() -> None:
    assert transforms.__name__ == "bfly_cli.transforms"
    assert {"dft", "dct", "hadamard"} <= set(transforms.names())


@pytest.mark.slow
def test_a_users_transforms_module_does_not_shadow_it(tmp_path: Path) -> None:
    (tmp_path / "transforms.py").write_text("raise RuntimeError('the user\\'s own transforms.py')\n")
    script = "import bfly_cli; f = bfly_cli.learn('dft', n=8); print(f.structure)"
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "BP"
    listed = subprocess.run([sys.executable, "-m", "bfly_cli", "list"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "hadamard" in listed.stdout


@pytest.mark.slow
def test_the_wheel_installs_no_top_level_transforms(tmp_path: Path) -> None:
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed: cannot build the wheel offline")
    env = {**os.environ, "BFLY_NO_KERNEL": "1", "BFLY_REQUIRE_KERNEL": "0"}  # the file list, not the compile
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), "-q"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    names = zipfile.ZipFile(glob.glob(str(tmp_path / "*.whl"))[0]).namelist()
    tops = {name.split("/")[0] for name in names}
    assert "transforms" not in tops and "bfly_cli" in tops
    assert "bfly_cli/transforms/cosine.py" in names
