"""Converting and exporting models: a run's exports (TFLite, ONNX, Keras, SavedModel; float or int8), the
converter and its plugins, quantization and calibration, Vela for Ethos-U."""

from .export import FORMATS, ExportResult, export_run, quantized_executor

__all__ = ["FORMATS", "ExportResult", "export_run", "quantized_executor"]
