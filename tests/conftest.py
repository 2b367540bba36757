"""Suite-wide setup: Keras 2 for tf.keras before any test module imports TensorFlow."""

import os

# eiq_lab.framework sets these on first use; a test module importing TensorFlow at collection comes first
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
