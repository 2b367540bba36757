"""The command-line face: `eiq` and the guide's `eiq-importer`.

Commands parse arguments, call the engine and print; they never touch SQL or TensorFlow.
"""
