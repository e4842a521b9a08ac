"""Using a trained model: ``predict`` (users' images -> classes; ``Predictor`` and the
``predict`` function, also ``barenet.predict``) and ``app`` (the draw-a-digit web page and its
JSON API; needs the ``web`` extra). Export to ONNX is ``barenet.export``, to PyTorch
``barenet.interop``."""

from .predict import Predictor

__all__ = ["Predictor"]
