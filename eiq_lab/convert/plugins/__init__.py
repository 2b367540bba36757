"""The converter plugins that ship with eiq-lab: each module follows the plugin contract (`query_convert`,
`convert`; ../shared/INTERFACES.md "Converter plugins"), exactly as a third-party plugin does.

`eiq_lab.convert.registry` imports them by the names in `BUILTIN`, alongside the plugins found through the
entry point groups ``eiq_lab.converters`` and ``deepview_converter`` and the out-of-process plugins installed
in managed environments. A built-in module that fails to import is listed with its error; the rest work.
"""

from __future__ import annotations

#: Built-in plugin modules (under this package), in the order `find` prefers them when two support a pair.
#: tensorflow: pb / SavedModel / h5 / keras / tflite -> tflite / onnx; onnx: onnx -> onnx (trim, rename,
#: quantize); onnx2tf: onnx -> tflite in a managed environment; rtm: tflite -> rtm through the vendor's
#: converter in a managed environment.
BUILTIN = ("tensorflow", "onnx", "onnx2tf", "rtm")
