"""Trained models for other runtimes: ONNX (``export.onnx``, the ``onnx`` extra). PyTorch
modules are ``barenet.interop``."""

DEFAULT_OPSET = 17
MIN_OPSET = 13  # every operator the exporter writes has had its current form since opset 13
