"""The repository as a clone meets it: notebooks saved from the lab carry no outputs, the package
metadata installs without deprecation warnings, the README stands alone."""
from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _hook():
    from traitlets.config import Config

    config = Config()
    runpy.run_path(str(ROOT / "jupyter_server_config.py"), init_globals={"get_config": lambda: config})
    return config.FileContentsManager.pre_save_hook


def test_the_lab_saves_its_notebooks_without_outputs():
    """JupyterLab autosaves: with `make lab`'s config the numbered notebooks stay as committed."""
    hook = _hook()
    cell = {"cell_type": "code", "source": "1", "execution_count": 3,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}]}
    model = {"type": "notebook", "content": {"cells": [dict(cell), {"cell_type": "markdown", "source": "x"}]}}
    hook(model=model, path="03_caracalla_roebel.ipynb", contents_manager=None)
    assert model["content"]["cells"][0]["outputs"] == [] and model["content"]["cells"][0]["execution_count"] is None
    mine = {"type": "notebook", "content": {"cells": [dict(cell, outputs=list(cell["outputs"]))]}}
    hook(model=mine, path="my_run.ipynb", contents_manager=None)
    assert mine["content"]["cells"][0]["outputs"], "a notebook of the user's own lost its outputs"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"jupyter lab --config=jupyter_server_config.py", makefile)


def test_package_metadata_uses_an_spdx_license():
    """setuptools warns on every install that a `license` table is deprecated."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(meta["project"]["license"], str)
    need = meta["build-system"]["requires"][0]
    assert int(re.search(r">=(\d+)", need).group(1)) >= 77  # SPDX strings need setuptools 77


def test_readme_stands_alone():
    text = (ROOT / "README.md").read_text()
    assert "../shared" not in text and "DESIGN.md" not in text
    for module in ("ddsp", "dsp", "widgets", "plots"):
        assert f"`{module}`" in text, module
    assert "make benchmark-data" in text.split("## Tour")[0], "set-up does not say what notebook 04 needs"
