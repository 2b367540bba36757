"""The model graph in netron, inside a panel: netron's web app served from its Python package on 127.0.0.1 (no
telemetry, no cookie prompt, no update nag), shown in an iframe through jupyter-server-proxy when the page is
served by a Jupyter server (JupyterLab, Binder, Voila as a server extension), else straight from loopback.
"""

from __future__ import annotations

import http.server
import mimetypes
import threading
import time
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ..errors import InputError

_ESM = """
async function pick(port) {
  let base = "/";
  const config = document.getElementById("jupyter-config-data");
  if (config) {
    try { base = JSON.parse(config.textContent).baseUrl || "/"; } catch (e) { /* keep "/" */ }
  }
  if (!base.endsWith("/")) base += "/";
  const proxied = `${base}proxy/${port}/`;
  try {
    const reply = await fetch(proxied, { method: "HEAD", credentials: "same-origin" });
    if (reply.ok) return proxied;
  } catch (e) { /* no proxy here: use loopback */ }
  return `${location.protocol}//${location.hostname}:${port}/`;
}

function render({ model, el }) {
  const frame = document.createElement("iframe");
  frame.className = "eiq-netron-frame";
  frame.style.width = "100%";
  frame.style.border = "1px solid #ccc";
  el.appendChild(frame);
  async function update() {
    frame.style.height = `${model.get("height")}px`;
    const port = model.get("port");
    if (!port) { frame.removeAttribute("src"); return; }
    const url = await pick(port);
    frame.src = `${url}?v=${model.get("version")}`;
    model.set("url", url);
    model.save_changes();
  }
  model.on("change:port", update);
  model.on("change:version", update);
  model.on("change:height", update);
  update();
}
export default { render };
"""


def _netron_root() -> Path:
    try:
        import netron
    except ImportError:
        raise InputError("the graph view needs netron: pip install 'eiq-lab[gui]'") from None
    return Path(netron.__file__).parent


def _index(root: Path, name: str) -> bytes:
    """netron's index.html for an embedded, offline view: the model to open, no telemetry, no prompts."""
    text = (root / "index.html").read_text(encoding="utf-8")
    today = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    # version 0.0.0 marks an unpackaged build: netron then sends no telemetry; today's date: no update nag
    text = text.replace('<meta name="version" content=', '<meta name="netron-version" content=')
    text = text.replace('<meta name="date" content=', '<meta name="netron-date" content=')
    meta = (
        '<meta name="type" content="Python"><meta name="version" content="0.0.0">'
        f'<meta name="date" content="{today}"><meta name="file" content="data/{name}">'
    )
    # the cookie netron asks about before it opens anything, answered since nothing is reported; a script file
    # (netron's page allows only same-origin scripts), scoped to the view's own path
    consent = '<script type="text/javascript" src="eiq-consent.js"></script>'
    text = text.replace(
        '<script type="text/javascript" src="index.js">', consent + '<script type="text/javascript" src="index.js">', 1
    )
    return text.replace("</head>", meta + "</head>", 1).encode("utf-8")


#: What netron's web app is made of (its Python files and anything else in the package are not served).
_ASSETS = {".html", ".js", ".css", ".json", ".png", ".ico", ".svg", ".gif", ".jpg", ".ttf", ".otf", ".woff", ".woff2"}

_CONSENT = b"document.cookie = 'consent=1; path=' + location.pathname.replace(/[^/]*$/, '');\n"


class NetronServer:
    """Serves netron's web app and one model file on 127.0.0.1 (a free port), on a daemon thread.

    Args:
        path: the model file (a SavedModel folder serves its saved_model.pb).
    """

    def __init__(self, path: str | Path):
        self.root = _netron_root()
        source = Path(path)
        if source.is_dir():
            source = source / "saved_model.pb"
        if not source.is_file():
            raise InputError(f"{path} is not a model file netron can show")
        self.path = source
        index = _index(self.root, source.name)
        root, model = self.root, source

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self._reply(head=True)

            def do_GET(self) -> None:
                self._reply(head=False)

            def _reply(self, head: bool) -> None:
                route = self.path.split("?", 1)[0]
                body, kind = None, "application/octet-stream"
                if route in ("/", "/index.html"):
                    body, kind = index, "text/html; charset=utf-8"
                elif route == "/eiq-consent.js":
                    body, kind = _CONSENT, "text/javascript"
                elif route == f"/data/{model.name}":
                    body = model.read_bytes()
                else:
                    target = (root / route.lstrip("/")).resolve()
                    if target.is_file() and target.is_relative_to(root) and target.suffix in _ASSETS:
                        body = target.read_bytes()
                        kind = mimetypes.guess_type(target.name)[0] or kind
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # quiet: the kernel's log is the user's notebook
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="eiq-netron", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class NetronView(anywidget.AnyWidget):
    """An iframe showing a model's graph in netron; `show(path)` switches the model, `stop()` ends the server."""

    _esm = _ESM
    port = traitlets.Int(0).tag(sync=True)
    version = traitlets.Int(0).tag(sync=True)
    height = traitlets.Int(560).tag(sync=True)
    url = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.server: NetronServer | None = None
        self.add_class("eiq-netron")

    def show(self, path: str | Path) -> None:
        """Serve `path` and point the view at it (the previous model's server stops)."""
        server = NetronServer(path)
        self.stop()
        self.server = server
        self.version += 1
        self.port = server.port

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
            self.port = 0
