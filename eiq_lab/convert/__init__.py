"""Converting and exporting models: TFLite (float32, int8), ONNX, Keras; labels and anchors with them."""

from .export import FORMATS, ExportResult, export_run

__all__ = ["FORMATS", "ExportResult", "export_run"]
