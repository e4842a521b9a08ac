"""Using a trained model: predict users' images (``predict``) and the draw-a-digit web page
(``app``, needs the ``web`` extra). Export to ONNX and PyTorch lives in ``barenet.export``
and ``barenet.interop``."""

from .predict import Predictor, predict

__all__ = ["Predictor", "predict"]
