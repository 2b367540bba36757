"""The notebooks the JupyterLab extension writes: one code cell per kind, read from the package's cell files."""

from __future__ import annotations

import pytest

from eiq_lab.errors import InputError
from eiq_lab.jupyter.notebooks import KINDS, notebook_content


@pytest.mark.parametrize(("kind", "call"), [("home", "Home()"), ("portal", "Portal(workspace="),
                                            ("plugins", "Plugins()"), ("modeltool", "ModelTool()")])  # fmt: skip
def test_each_kind_is_a_valid_notebook_whose_code_opens_its_panel(kind, call):
    notebook = notebook_content(kind)
    code = notebook.cells[-1]
    assert code.cell_type == "code" and call in code.source
    compile(code.source, kind, "exec")  # the cell is Python the kernel can run
    titled = [c for c in notebook.cells if c.cell_type == "markdown"]
    assert titled[0].source.startswith(f"# {KINDS[kind]}") if titled else kind == "portal"


def test_a_model_tool_notebook_names_its_model_beside_it_and_unknown_kinds_are_refused():
    code = notebook_content("modeltool", model="models/v1/m's.tflite").cells[-1].source
    assert code.endswith('ModelTool("m\'s.tflite")')
    with pytest.raises(InputError, match="kinds: home"):
        notebook_content("dashboard")
