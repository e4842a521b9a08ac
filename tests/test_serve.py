"""``barenet serve``: the JSON API (in-process), the command (a real server on a free port),
and what it refuses."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from barenet.serve import app as app_module
from barenet.serve.app import STATIC, create_app
from barenet.serve.predict import MAX_UNITS, Predictor


def digit_png(dark_ink: bool = True) -> bytes:
    """A '1'-like stroke on a page, as PNG bytes."""
    page = np.zeros((120, 90), np.uint8)
    page[15:105, 40:52] = 255
    if dark_ink:
        page = 255 - page
    buf = io.BytesIO()
    Image.fromarray(page).save(buf, format="PNG")
    return buf.getvalue()


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


@pytest.fixture(scope="module")
def mlp_client(mlp_run):
    predictor = Predictor.from_run(mlp_run)
    with TestClient(create_app(predictor)) as client:
        yield client, predictor


def test_page_and_static_files_ship_in_the_package(mlp_client):
    client, _ = mlp_client
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<canvas id="pad"' in page.text
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and len(r.text) > 500
    for f in ("index.html", "app.js", "style.css"):  # works offline: nothing from elsewhere
        text = (STATIC / f).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), f


def test_api_model(mlp_client, mlp_run):
    client, predictor = mlp_client
    info = client.get("/api/model").json()
    assert info["dataset"] == "mnist" and info["classes"] == [str(i) for i in range(10)]
    assert info["type"] == "mlp" and info["input_shape"] == [784]
    assert info["parameters"] == predictor.model.num_parameters()
    assert info["layers"][0].startswith("Linear(784, 32")


def test_api_predict_body_and_multipart_match_predict(mlp_client):
    client, predictor = mlp_client
    data = digit_png()
    expected = predictor.predict([data], names=["upload"])[0]
    r = client.post("/api/predict", content=data, headers={"Content-Type": "image/png"})
    assert r.status_code == 200
    got = r.json()
    assert set(got) == {"file", "class", "name", "probability", "top", "blank"}
    assert got["class"] == expected["class"] and got["name"] == expected["name"]
    assert [t["class"] for t in got["top"]] == [t["class"] for t in expected["top"]]
    probs = [t["probability"] for t in expected["top"]]
    assert [t["probability"] for t in got["top"]] == pytest.approx(probs, abs=1e-6)
    r = client.post("/api/predict", files={"image": ("digit.png", data, "image/png")})
    assert r.status_code == 200 and r.json()["class"] == expected["class"]


def test_api_predict_explain_mlp(mlp_client):
    client, predictor = mlp_client
    r = client.post(
        "/api/predict?explain=1", content=digit_png(False), headers={"Content-Type": "image/png"}
    )
    got = r.json()
    np.testing.assert_array_equal(np.array(got["input"]), predictor.image(digit_png(False)))
    assert len(got["probabilities"]) == 10 and sum(got["probabilities"]) == pytest.approx(1.0)
    ex = got["explain"]
    assert ex["kind"] == "units" and 1 <= len(ex["units"]) <= MAX_UNITS
    acts = [u["activation"] for u in ex["units"]]
    assert acts == sorted(acts, reverse=True) and min(acts) > 0  # the most active, first
    hidden = predictor.model.layers[1](
        predictor.model.layers[0](predictor.model_input(predictor.image(digit_png(False))[None]))
    )[0]
    assert acts == pytest.approx(np.sort(hidden[hidden > 0])[::-1][:MAX_UNITS].tolist(), rel=1e-5)
    first = ex["units"][0]
    w = predictor.model.layers[0].weight.data[first["unit"]].reshape(28, 28)
    img = np.array(first["image"])
    assert img.shape == (28, 28)
    assert (
        np.sign(img.astype(int) - 128) == np.sign(np.round(127.5 * w / abs(w).max()))
    ).mean() > 0.9


def test_api_predict_explain_cnn(cnn_run):
    predictor = Predictor.from_run(cnn_run)
    with TestClient(create_app(predictor)) as client:
        got = client.post(
            "/api/predict?explain=true", content=digit_png(), headers={"Content-Type": "image/png"}
        ).json()
    ex = got["explain"]
    assert ex["kind"] == "maps"
    first_conv = predictor.model.layers[0]
    assert len(ex["maps"]) == first_conv.out_channels
    assert np.array(ex["maps"][0]["image"]).shape == (24, 24)  # 28 - 5 + 1


def test_refusals_are_json_4xx(mlp_client, monkeypatch):
    client, _ = mlp_client

    def post(content, ctype="image/png", **kw):
        return client.post("/api/predict", content=content, headers={"Content-Type": ctype}, **kw)

    cases = [
        (post(b"hello", "text/plain"), 415, "send an image"),
        (post(b"\x89PNG\r\n\x1a\n broken"), 415, "not an image"),
        (post(digit_png()[:60]), 415, "corrupt image"),
        (post(b""), 400, "empty body"),
        (client.post("/api/predict", files={"other": ("x.png", b"123")}), 400, "'image'"),
        (client.get("/api/predict"), 405, ""),
        (client.get("/api/nothing"), 404, ""),
    ]
    monkeypatch.setattr(app_module, "MAX_BODY_BYTES", 1000)
    cases.append((post(b"\0" * 1001), 413, "too large"))

    def chunks():  # no Content-Length: the stream itself is capped
        for _ in range(50):
            yield b"\0" * 100

    cases.append((post(chunks()), 413, "too large"))
    for r, status, needle in cases:
        assert r.status_code == status, (status, r.text)
        assert r.headers["content-type"] == "application/json"
        assert needle in r.json()["error"]


def test_never_writes_to_the_run_folder(mlp_run):
    before = snapshot(mlp_run)
    with TestClient(create_app(Predictor.from_run(mlp_run))) as client:
        client.get("/")
        client.get("/api/model")
        for data in (digit_png(), b"junk"):
            client.post(
                "/api/predict?explain=1", content=data, headers={"Content-Type": "image/png"}
            )
    assert snapshot(mlp_run) == before


# -- the command: a real server ---------------------------------------------------------
def serve(run_dir, *args: str) -> tuple[subprocess.Popen, str]:
    """Start ``barenet serve RUN --port 0``; returns the process and its base URL."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "barenet.cli", "serve", str(run_dir), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stdout.readline()
    match = re.search(r"http://\S+/", line)
    if not match:
        proc.kill()
        raise AssertionError(f"no URL from barenet serve: {line!r} {proc.stderr.read()}")
    return proc, match.group(0)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_cli_serve_loopback_by_default(mlp_run):
    proc, url = serve(mlp_run)
    try:
        assert url.startswith("http://127.0.0.1:")
        info = httpx.get(url + "api/model", timeout=30).json()
        assert info["dataset"] == "mnist"
        r = httpx.post(
            url + "api/predict",
            content=digit_png(),
            headers={"Content-Type": "image/png"},
            timeout=30,
        )
        assert r.status_code == 200 and 0 <= r.json()["class"] <= 9
    finally:
        stop(proc)


def test_cli_serve_bad_run_and_busy_port(tmp_path, mlp_run):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "barenet.cli", "serve"]
    r = subprocess.run([*cmd, str(tmp_path)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        r = subprocess.run(
            [*cmd, str(mlp_run), "--port", port],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    assert r.returncode == 2 and "cannot listen on 127.0.0.1:" + port in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["serve", "dashboard"])
def test_cli_port_out_of_range_is_bad_input(command, mlp_run, capsys):
    # --port 99999 ended in the socket's OverflowError: an internal error (exit 1).
    from barenet.cli import main

    with pytest.raises(SystemExit) as e:
        main([command, str(mlp_run), "--port", "99999"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "must be 0-65535, got 99999" in err and "Traceback" not in err


def test_a_missing_extra_names_the_folder_install():
    # It said pip install 'barenet[web]', which asks PyPI for a package named barenet
    # instead of adding the extra to this folder install (as every other message says).
    from barenet.cli.predict import _need
    from barenet.errors import UserError

    with pytest.raises(UserError, match=r"pip install -e '\.\[web\]'"):
        _need("web", "barenet_no_such_module")
