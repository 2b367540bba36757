"""The training fixtures (digits and shapes projects, the tiny CNN plugin), for evaluating trained runs."""

from train.conftest import (  # noqa: F401  (pytest finds fixtures by name; tests/ is on sys.path)
    digits_path,
    digits_template,
    shapes_path,
    shapes_template,
    tiny_plugin,
)
