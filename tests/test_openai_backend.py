"""The OpenAI backend against a local HTTP peer that speaks /v1/chat/completions (the only mock: the server)."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

pytest.importorskip("openai")

from r1track.backends import Request, build_backend  # noqa: E402
from r1track.errors import R1TrackError  # noqa: E402
from r1track.prompts import tracking_messages  # noqa: E402


def completion(content) -> bytes:
    return json.dumps({
        "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "tiny",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
    }).encode()


def decode_images(body: dict) -> list[np.ndarray]:
    from PIL import Image

    out = []
    for part in body["messages"][0]["content"]:
        if part["type"] == "image_url":
            header, data = part["image_url"]["url"].split(",", 1)
            assert header in ("data:image/png;base64", "data:image/jpeg;base64")
            out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")))
    return out


class ChatServer:
    """A chat-completions peer on 127.0.0.1 whose replies follow a script.

    ``script`` is a list of actions used in turn (the last one repeats): ``"ok"`` (a completion whose text
    names the request: the first image's top-left pixel value and the number of images), ``("sleep", s)``
    (then ok), ``("status", code)``, ``("body", bytes)`` (200 with that raw body), ``("content", x)``.
    """

    def __init__(self, script=("ok",)):
        self.script = list(script)
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with server.lock:
                    server.bodies.append({"path": self.path, **body})
                    action = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                kind, arg = (action, None) if isinstance(action, str) else action
                if kind == "sleep":
                    time.sleep(arg)
                    kind = "ok"
                if kind == "status":
                    return self._send(arg, json.dumps({"error": {"message": f"boom {arg}"}}).encode())
                if kind == "body":
                    return self._send(200, arg)
                if kind == "content":
                    return self._send(200, completion(arg))
                images = decode_images(body)
                text = f"[{int(images[0][0, 0, 0])},{len(images)},{body['max_tokens']},0]" if images else "none"
                return self._send(200, completion(text))

            def _send(self, code: int, payload: bytes):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def requests_(n: int, n_images: int = 2) -> list[Request]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        images = [rng.integers(0, 256, (24 + 4 * k, 32, 3), dtype=np.uint8) for k in range(n_images)]
        images[0][0, 0, 0] = i  # the server echoes this pixel: replies must come back in request order
        messages = tracking_messages(f"[{i},0,5,5]")
        messages[0]["content"] = [{"type": "image"}] * n_images + messages[0]["content"][-1:]
        out.append(Request(images, messages, {"kind": "track"}))
    return out


def backend(server: ChatServer, **kw):
    # PNG: the test server answers from exact pixel values (the default JPEG may move them)
    options = dict(base_url=server.url, model="tiny-vl", concurrency=3, timeout=5, retries=2, backoff=0.01,
                   image_format="png")
    options.update(kw)
    return build_backend("openai", **options)


def test_replies_in_order_with_images_as_base64_in_order():
    reqs = requests_(7)
    with ChatServer() as server:
        b = backend(server, max_new_tokens=17)
        replies = b.generate(reqs)
        b.close()
    assert replies == [f"[{i},2,17,0]" for i in range(7)]
    assert len(server.bodies) == 7
    for body in server.bodies:
        assert body["path"] == "/v1/chat/completions"
        assert body["model"] == "tiny-vl" and body["temperature"] == 0.0 and body["max_tokens"] == 17
        parts = body["messages"][0]["content"]
        assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
        i = int(parts[2]["text"].split("bounding box [")[1].split(",")[0])
        sent = decode_images(body)
        assert len(sent) == 2 and all(np.array_equal(a, e) for a, e in zip(sent, reqs[i].images))  # PNG: exact


def test_jpeg_images_by_default_and_empty_batch():
    with ChatServer() as server:
        b = build_backend("openai", base_url=server.url, model="tiny-vl", timeout=5)
        assert b.generate([]) == []
        reqs = requests_(1, n_images=1)
        replies = b.generate(reqs)
    assert len(replies) == 1 and replies[0].endswith(",1,64,0]")  # JPEG is lossy: the pixel may move
    url = server.bodies[0]["messages"][0]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert decode_images(server.bodies[0])[0].shape == reqs[0].images[0].shape


def test_slow_reply_times_out_then_the_retry_succeeds():
    with ChatServer([("sleep", 2.0), "ok"]) as server:
        assert backend(server, timeout=0.5).generate(requests_(1)) == ["[0,2,64,0]"]
    assert len(server.bodies) == 2


def test_always_slow_is_an_error_naming_the_server():
    with ChatServer([("sleep", 1.0)]) as server:
        with pytest.raises(R1TrackError, match=rf"{server.url}.*timed out.*3 attempts"):
            backend(server, timeout=0.3).generate(requests_(1))


def test_http_500_is_retried_then_succeeds():
    with ChatServer([("status", 500), ("status", 503), "ok"]) as server:
        assert backend(server).generate(requests_(1)) == ["[0,2,64,0]"]
    assert len(server.bodies) == 3


def test_always_500_is_a_clear_error_after_the_retries():
    with ChatServer([("status", 500)]) as server:
        with pytest.raises(R1TrackError, match=rf"server {server.url}: HTTP 500.*boom 500.*3 attempts"):
            backend(server).generate(requests_(1))
    assert len(server.bodies) == 3


def test_client_errors_are_not_retried():
    with ChatServer([("status", 404)]) as server:
        with pytest.raises(R1TrackError, match="HTTP 404"):
            backend(server).generate(requests_(1))
    assert len(server.bodies) == 1


def test_garbage_bodies_are_retried_and_garbage_answers_returned():
    with ChatServer([("body", b"<html>bad gateway"), ("body", b'{"choices": []}'), "ok"]) as server:
        assert backend(server).generate(requests_(1)) == ["[0,2,64,0]"]
    assert len(server.bodies) == 3
    with ChatServer([("body", b'{"no": "choices"')]) as server:
        with pytest.raises(R1TrackError, match="not a chat completion"):
            backend(server).generate(requests_(1))
    for content, expected in [("", ""), (None, ""), ("I cannot see it [1,2", "I cannot see it [1,2")]:
        with ChatServer([("content", content)]) as server:
            assert backend(server, retries=0).generate(requests_(1)) == [expected]


def test_construction_errors():
    with pytest.raises(R1TrackError, match="server URL"):
        build_backend("openai", base_url="", model="m")
    with pytest.raises(R1TrackError, match="concurrency"):
        build_backend("openai", base_url="http://127.0.0.1:9/v1", model="m", concurrency=0)


def _clip(folder, n=3):
    import cv2

    folder.mkdir()
    for i in range(n):
        frame = np.full((60, 80, 3), 40, np.uint8)
        frame[20:40, 30 + i : 50 + i] = 200
        cv2.imwrite(str(folder / f"{i + 1:04d}.png"), frame)
    return folder


def test_track_cli_timeout_and_retries_bound_a_stalled_server(tmp_path, capsys):
    from r1track.cli import main

    clip = _clip(tmp_path / "clip")
    args = ["track", str(clip), "--box", "30,20,20,20", "--backend", "openai", "--model", "tiny-vl",
            "--family", "qwen2.5-vl"]
    with ChatServer([("sleep", 3.0)]) as server:  # never answers in time
        start = time.monotonic()
        code = main(args + ["--base-url", server.url, "--timeout", "0.3", "--retries", "1",
                            "--out", str(tmp_path / "a.txt")])
        waited = time.monotonic() - start
    assert code == 2 and waited < 3.0  # the default (60 s x 4 attempts) would wait 4 minutes
    err = capsys.readouterr().err.strip()
    assert "timed out (gave up after 2 attempts)" in err and server.url in err and len(err.splitlines()) == 1
    assert len(server.bodies) == 2 and not (tmp_path / "a.txt").exists()

    with ChatServer([("sleep", 2.0), ("content", "[30,20,50,40]")]) as server:  # slow once, then fine
        out = tmp_path / "b.txt"
        assert main(args + ["--base-url", server.url, "--timeout", "0.5", "--retries", "1",
                            "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 3 and len(server.bodies) == 3

    for bad in (["--timeout", "0"], ["--retries", "-1"]):
        assert main(args + ["--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "c.txt")] + bad) == 2
        assert "timeout > 0" in capsys.readouterr().err
