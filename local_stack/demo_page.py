"""`demo-output/index.html`: the video with its thumbnail as poster, a scrub bar whose hover preview
comes from the storyboard's WebVTT, the stills and the animated preview (issue 13).

Plain HTML and JavaScript, no player library: the page needs one `fetch` of the VTT, a dozen
lines to parse its cues and a CSS background crop per hover. A player (video.js, Plyr, Shaka)
would have to be vendored or fetched from a CDN, which the offline demo and the browser test
cannot do, and it would hide the very thing the page is there to show: how a client uses the
VTT's `sprite#xywh=x,y,w,h` payloads. The VTT is also inlined, for a page opened from disk
(file:// forbids fetch); served over HTTP the page reads the real file.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from local_stack.stack import LocalStack, Result

PAGE_NAME = "index.html"
VIDEO_DIR = "source"

# What the demo asks for on its upload (user metadata), unless --meta says otherwise.
DEMO_METADATA = {"thumbnail-storyboard": "on", "thumbnail-count": "6", "thumbnail-preview": "on"}


def extra_keys(manifest: Mapping[str, Any]) -> list[str]:
    """The names of the stills, storyboard files and preview the manifest lists."""
    return [
        entry["name"]
        for entry in manifest.get("thumbnails", [])
        if entry.get("kind", "thumbnail") != "thumbnail"
    ]


def from_stack(stack: LocalStack, result: Result, out: Path, video: Path) -> list[Path]:
    """Download the extra outputs beside the thumbnails `make demo` downloaded, then write the page."""
    s3 = stack.emulator.client("s3")
    prefix = stack.worker_setting("OUTPUT_PREFIX")

    def locate(key: str) -> Path:
        return out / key.removeprefix(prefix)

    written = []
    for key in extra_keys(result.manifest):
        target = locate(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())
        written.append(target)
    if result.manifest.get("status") == "ok":
        written.append(write_page(out, result.manifest, locate, video))
    return written


def write_page(out: Path, manifest: Mapping[str, Any], locate: Callable[[str], Path], video: Path) -> Path:
    """Write `out/index.html` (and a copy of the video under `out/source/`) for a manifest whose
    listed names `locate` maps to the files already in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / VIDEO_DIR / video.name
    if not target.exists() or target.stat().st_size != video.stat().st_size:
        target.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(video, target)

    def url(path: Path) -> str:
        return quote(path.resolve().relative_to(out.resolve()).as_posix())

    entries = manifest.get("thumbnails", [])

    def first(kind: str) -> Mapping[str, Any] | None:
        return next((e for e in entries if e.get("kind", "thumbnail") == kind), None)

    vtt = first("storyboard_vtt")
    preview = first("preview")
    poster = first("thumbnail")
    config = {
        "title": (manifest.get("input") or {}).get("key") or video.name,
        "video": url(target),
        "poster": url(locate(poster["name"])) if poster else None,
        "duration": (manifest.get("source") or {}).get("duration"),
        "vtt": url(locate(vtt["name"])) if vtt else None,
        "vttText": locate(vtt["name"]).read_text(encoding="utf-8") if vtt else None,
        "stills": [
            {"src": url(locate(e["name"])), "time": e["time"]} for e in entries if e.get("kind") == "still"
        ],
        "preview": {"src": url(locate(preview["name"])), "start": preview["start"], "end": preview["end"]}
        if preview
        else None,
    }
    page = out / PAGE_NAME
    page.write_text(render(config), encoding="utf-8")
    return page


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)  # the same file system: no copy of a large video
    except OSError:
        shutil.copyfile(source, target)


def render(config: Mapping[str, Any]) -> str:
    """The page: static markup, the config as JSON, and the script that reads the VTT."""
    data = json.dumps(config).replace("</", "<\\/")  # inside <script>: no early end tag
    return _TEMPLATE.replace("__TITLE__", html.escape(str(config["title"]))).replace("__CONFIG__", data)


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Thumbnail Creator demo: __TITLE__</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 24px; background: #111; color: #eee; }
  h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
  #player { position: relative; width: 640px; }
  video { width: 640px; display: block; background: #000; }
  #scrub { position: relative; height: 18px; margin-top: 6px; background: #333; border-radius: 4px;
           cursor: pointer; }
  #scrub-progress { position: absolute; left: 0; top: 0; bottom: 0; width: 0; background: #c33;
                    border-radius: 4px; }
  #hover-preview { position: absolute; bottom: 30px; display: none; background-repeat: no-repeat;
                   border: 0; outline: 2px solid #fff; box-shadow: 0 2px 8px #000; pointer-events: none; }
  #hover-time { position: absolute; bottom: 2px; display: none; font-size: 12px; background: #000c;
                padding: 1px 4px; border-radius: 3px; transform: translateX(-50%); pointer-events: none; }
  .row { display: flex; flex-wrap: wrap; gap: 12px; }
  figure { margin: 0; } figcaption { font-size: 12px; color: #aaa; }
  .stills img { width: 200px; display: block; }
</style>
</head>
<body>
<h1>Thumbnail Creator demo: __TITLE__</h1>
<div id="player">
  <video id="video" controls preload="metadata" playsinline></video>
  <div id="scrub" title="hover: storyboard preview from the WebVTT; click: seek">
    <div id="scrub-progress"></div>
  </div>
  <div id="hover-preview"></div>
  <div id="hover-time"></div>
</div>
<h2>Stills</h2>
<div class="row stills" id="stills"></div>
<h2>Animated preview</h2>
<div class="row" id="preview"></div>
<script id="config" type="application/json">__CONFIG__</script>
<script>
"use strict";
const config = JSON.parse(document.getElementById("config").textContent);
const video = document.getElementById("video");
const scrub = document.getElementById("scrub");
const hover = document.getElementById("hover-preview");
const label = document.getElementById("hover-time");
if (config.poster) video.poster = config.poster;
video.src = config.video;

function seconds(text) {  // "hh:mm:ss.mmm" or "mm:ss.mmm"
  return text.split(":").reduce((total, part) => total * 60 + parseFloat(part), 0);
}
function clock(t) {
  const m = Math.floor(t / 60), s = t - m * 60;
  return m + ":" + s.toFixed(1).padStart(4, "0");
}
// WebVTT cues whose payload is SPRITE#xywh=x,y,w,h, the sprite relative to the VTT's URL.
function parseCues(text, base) {
  const cues = [];
  for (const block of text.replace(/\\r/g, "").split(/\\n\\n+/)) {
    const lines = block.trim().split("\\n");
    const at = lines.findIndex((line) => line.includes("-->"));
    if (at < 0 || at + 1 >= lines.length) continue;
    const [start, end] = lines[at].split("-->").map((part) => seconds(part.trim().split(" ")[0]));
    const [sprite, fragment] = lines[at + 1].trim().split("#xywh=");
    const [x, y, w, h] = fragment.split(",").map(Number);
    cues.push({ start, end, sprite: new URL(sprite, base).href, x, y, w, h });
  }
  return cues;
}
async function loadCues() {
  if (!config.vtt) return [];
  const base = new URL(config.vtt, document.baseURI);
  try {
    const response = await fetch(base);
    if (!response.ok) throw new Error(response.status);
    return parseCues(await response.text(), base);
  } catch (error) {  // opened from disk: the copy inlined in the page
    return parseCues(config.vttText, base);
  }
}
function duration() {
  return config.duration || (isFinite(video.duration) ? video.duration : 0);
}
function timeAt(event) {
  const box = scrub.getBoundingClientRect();
  const fraction = Math.min(Math.max((event.clientX - box.left) / box.width, 0), 1);
  return { time: fraction * duration(), x: event.clientX - box.left };
}
loadCues().then((cues) => {
  document.body.dataset.cues = String(cues.length);
  scrub.addEventListener("mousemove", (event) => {
    const { time, x } = timeAt(event);
    const cue = cues.find((c) => c.start <= time && time < c.end) || cues[cues.length - 1];
    if (!cue) return;
    hover.style.display = label.style.display = "block";
    hover.style.width = cue.w + "px";
    hover.style.height = cue.h + "px";
    hover.style.backgroundImage = "url(\\"" + cue.sprite + "\\")";
    hover.style.backgroundPosition = -cue.x + "px " + -cue.y + "px";
    hover.style.left = Math.min(Math.max(x - cue.w / 2, 0), scrub.clientWidth - cue.w) + "px";
    hover.style.bottom = (scrub.offsetHeight + 12) + "px";
    hover.dataset.time = time.toFixed(3);
    hover.dataset.cueStart = String(cue.start);
    label.style.left = x + "px";
    label.textContent = clock(time);
  });
  scrub.addEventListener("mouseleave", () => { hover.style.display = label.style.display = "none"; });
  scrub.addEventListener("click", (event) => { video.currentTime = timeAt(event).time; });
});
video.addEventListener("timeupdate", () => {
  const total = duration();
  document.getElementById("scrub-progress").style.width = total ? (100 * video.currentTime / total) + "%" : 0;
});
for (const still of config.stills) {
  const figure = document.createElement("figure");
  const image = document.createElement("img");
  image.src = still.src;
  image.alt = "still at " + still.time + " s";
  image.addEventListener("click", () => { video.currentTime = still.time; });
  const caption = document.createElement("figcaption");
  caption.textContent = clock(still.time);
  figure.append(image, caption);
  document.getElementById("stills").append(figure);
}
if (config.preview) {
  const figure = document.createElement("figure");
  const image = document.createElement("img");
  image.src = config.preview.src;
  image.alt = "animated preview";
  image.id = "animated-preview";
  const caption = document.createElement("figcaption");
  caption.textContent = clock(config.preview.start) + " to " + clock(config.preview.end);
  figure.append(image, caption);
  document.getElementById("preview").append(figure);
}
</script>
</body>
</html>
"""
