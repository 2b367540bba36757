"""Capture from the browser's camera: a small anywidget (getUserMedia in the page) that sends each captured
frame to Python as JPEG bytes; the Curator saves the frames into the project.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

log = logging.getLogger("eiq_lab.widgets")

_ESM = r"""
function button(text, cls) {
  const b = document.createElement("button");
  b.textContent = text;
  b.className = "jupyter-button widget-button " + cls;
  return b;
}

function render({ model, el }) {
  el.classList.add("eiq-camera");
  const video = document.createElement("video");
  video.className = "eiq-camera-video";
  video.autoplay = true;
  video.muted = true;
  video.playsInline = true;
  video.width = model.get("preview_width");
  const start = button("Start camera", "eiq-camera-start");
  const shoot = button("Capture", "eiq-camera-shoot");
  const stop = button("Stop camera", "eiq-camera-stop");
  const note = document.createElement("span");
  note.className = "eiq-camera-note";
  shoot.disabled = true;
  stop.disabled = true;
  let stream = null;
  let shots = 0;

  const halt = () => {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
    shoot.disabled = true;
    stop.disabled = true;
    start.disabled = false;
  };

  start.addEventListener("click", async () => {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      note.textContent = "this page cannot use a camera (the browser allows it only on https or localhost)";
      model.send({ type: "error", message: note.textContent });
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: model.get("width") }, height: { ideal: model.get("height") } },
        audio: false,
      });
      video.srcObject = stream;
      await video.play();
      shoot.disabled = false;
      stop.disabled = false;
      start.disabled = true;
      note.textContent = "camera on: press Capture";
    } catch (err) {
      note.textContent = "camera unavailable: " + (err && err.message ? err.message : err);
      model.send({ type: "error", message: note.textContent });
    }
  });

  shoot.addEventListener("click", () => {
    if (!stream || !video.videoWidth) return;
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob(async (blob) => {
      const buffer = await blob.arrayBuffer();
      shots += 1;
      model.send({ type: "frame", width: canvas.width, height: canvas.height, shot: shots }, undefined, [buffer]);
      note.textContent = shots + " frame(s) sent";
    }, "image/jpeg", model.get("quality"));
  });

  stop.addEventListener("click", () => {
    halt();
    note.textContent = "camera off";
  });

  const bar = document.createElement("div");
  bar.className = "eiq-camera-bar";
  bar.append(start, shoot, stop, note);
  el.append(video, bar);
  return () => halt();
}
export default { render };
"""

_CSS = """
.eiq-camera { display: flex; flex-direction: column; gap: 4px; }
.eiq-camera-video { background: #222; max-width: 100%; }
.eiq-camera-bar { display: flex; gap: 6px; align-items: center; }
.eiq-camera-note { color: #555; font-size: 90%; }
"""


class CameraCapture(anywidget.AnyWidget):
    """A camera preview with Start / Capture / Stop; each capture arrives in Python as JPEG bytes.

    Args:
        on_frame: ``callable(jpeg_bytes)`` for each captured frame.
        on_error: ``callable(message)`` when the browser refuses or has no camera.
        width, height: the resolution asked of the camera (it may give another).

    Example:
        >>> camera = CameraCapture(on_frame=lambda jpeg: project.add_image(jpeg))  # doctest: +SKIP
    """

    _esm = _ESM
    _css = _CSS

    width = traitlets.Int(640).tag(sync=True)
    height = traitlets.Int(480).tag(sync=True)
    preview_width = traitlets.Int(320).tag(sync=True)
    quality = traitlets.Float(0.9).tag(sync=True)

    def __init__(
        self,
        on_frame: Callable[[bytes], Any] | None = None,
        on_error: Callable[[str], Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.on_frame = on_frame
        self.on_error = on_error
        self.frames = 0
        self.on_msg(self._on_message)

    def _on_message(self, _widget: Any, content: dict, buffers: list) -> None:
        self.handle_message(content, buffers)

    def handle_message(self, content: dict, buffers: list) -> None:
        """Dispatch a message from the page: ``{"type": "frame"}`` with the JPEG as its buffer, or an error."""
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "frame" and buffers:
            self.frames += 1
            if self.on_frame is not None:
                self.on_frame(bytes(buffers[0]))
        elif kind == "error" and self.on_error is not None:
            self.on_error(str(content.get("message", "camera error")))
        elif kind not in ("frame", "error"):
            log.warning("camera widget: unexpected message %r", content)
