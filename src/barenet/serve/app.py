"""The draw-a-digit page and its JSON API (Starlette; ``barenet serve`` runs it on uvicorn).

Routes:

- ``GET /``: the page (``static/index.html``; its JS and CSS ship in the package: works
  offline).
- ``GET /api/model``: architecture, dataset, class names (``Predictor.info``).
- ``POST /api/predict``: the image file as the body (``Content-Type: image/png`` etc.) or a
  multipart form field ``image``; answers the ``predict --json`` object of that one image.
  ``?explain=1`` adds ``input`` (the 28x28 picture the model saw) and ``explain`` (first
  layer units or feature maps), which the page draws.

Bodies over ``MAX_BODY_BYTES`` get 413, non-images 415, other bad requests 400/404/405:
always a JSON ``{"error": "..."}``. Nothing is ever written (the run folder is only read
when the Predictor is made).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..data.images import ImageError
from .predict import Predictor

MAX_BODY_BYTES = 5 * 1024 * 1024
STATIC = resources.files("barenet.serve") / "static"
IMAGE_TYPES = ("image/", "application/octet-stream")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_capped(request: Request) -> bytes:
    """The request body, refused (413) as soon as it passes ``MAX_BODY_BYTES``: a huge or
    endless upload is never held in memory."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "bad Content-Length")
        if int(declared) > MAX_BODY_BYTES:
            raise HTTPException(413, f"body too large (limit {MAX_BODY_BYTES:,} bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"body too large (limit {MAX_BODY_BYTES:,} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


async def _image_bytes(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _read_capped(request)
    if ctype == "multipart/form-data":
        replayed = False

        async def receive() -> dict[str, Any]:  # the capped body again, for the form parser
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, receive).form(
                max_files=1, max_fields=4, max_part_size=MAX_BODY_BYTES
            )
        except Exception as e:  # noqa: BLE001 - malformed multipart bodies raise many types
            raise HTTPException(400, f"malformed multipart body: {e}") from None
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise HTTPException(400, "multipart body needs a file field named 'image'")
        return await upload.read()
    if ctype and not ctype.startswith(IMAGE_TYPES):
        raise HTTPException(415, f"send an image file (image/png, ...), not {ctype}")
    return body


def create_app(predictor: Predictor) -> Starlette:
    """The Starlette application serving ``predictor``."""

    async def index(request: Request) -> Response:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    async def model_info(request: Request) -> Response:
        return JSONResponse(predictor.info())

    async def predict(request: Request) -> Response:
        data = await _image_bytes(request)
        if not data:
            return _error(400, "empty body: send an image file")
        try:
            picture = predictor.image(data)
        except ImageError as e:
            return _error(415, str(e).removeprefix("<image bytes>: "))
        probs = predictor.probabilities(picture[None])[0]
        top = request.query_params.get("top", "3")
        k = int(top) if top.isdigit() else 3
        answer: dict[str, Any] = {
            "file": "upload",
            **predictor.describe(probs, k, blank=not picture.any()),
        }
        if request.query_params.get("explain") in ("1", "true"):
            answer["input"] = picture.tolist()
            answer["probabilities"] = [float(p) for p in probs]
            answer["explain"] = predictor.explain(picture)
        return JSONResponse(answer)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail))

    routes = [
        Route("/", index),
        Route("/api/model", model_info, methods=["GET"]),
        Route("/api/predict", predict, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})
