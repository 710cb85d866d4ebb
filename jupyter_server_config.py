"""JupyterLab settings for `make lab` (passed with --config): the lab's numbered notebooks are saved
without outputs, so that using the lab leaves the committed notebooks unchanged.

A notebook named like ``03_caracalla_roebel.ipynb`` (two digits, an underscore) in the notebooks
folder is saved with its outputs and execution counts stripped; any other notebook (File > Save
Notebook As... ``my_run.ipynb``) keeps its outputs. Run folders under outputs/ keep every result.
"""
import re

LAB_NOTEBOOK = re.compile(r"^(notebooks/)?\d\d_[^/]*\.ipynb$")


def strip_outputs(model, path, **kwargs):
    """FileContentsManager.pre_save_hook: empty the outputs of the lab's own notebooks before saving."""
    if model.get("type") != "notebook" or not LAB_NOTEBOOK.match(str(path).replace("\\", "/").lstrip("/")):
        return
    for cell in model.get("content", {}).get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None


if "get_config" in globals():  # read by Jupyter
    c = get_config()  # noqa: F821
    c.FileContentsManager.pre_save_hook = strip_outputs
