"""Reports open in a real browser from disk: Debian's headless Chromium, offline.

For each page a copy gets a small checking script at the top of ``<head>`` (before the
page's Content-Security-Policy, so the policy still governs everything the page itself
loads). The script records script errors, resources that fail to load, CSP violations and
``console.error`` calls, and after ``load`` writes a JSON verdict into the DOM, which
``--dump-dom`` hands back. Chromium's own console log (stderr) must be silent too. A
screenshot of each page is kept in ``$NEUROVIS_ARTIFACTS`` (or the test's tmp folder).

Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it);
skipped with that reason otherwise.
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import neurovis as nv
from neurovis.cli import main
from test_reports import html_refs, natural_images, run, strong_net

CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and os.path.exists(p)), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)"
)

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
    "--enable-logging=stderr", "--v=0",
]

CHECK = """<script>
window.__nv = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  if (t && t !== window && t.tagName) { __nv.push("failed to load " + t.tagName + " " + (t.getAttribute("src") || t.getAttribute("href"))); }
  else { __nv.push("script error: " + e.message); }
}, true);
document.addEventListener("securitypolicyviolation", function (e) { __nv.push("CSP: " + e.violatedDirective + " " + e.blockedURI); });
(function () { var ce = console.error; console.error = function () { __nv.push("console.error: " + Array.prototype.join.call(arguments, " ")); ce.apply(console, arguments); }; })();
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var sorted = null, head = Array.prototype.filter.call(document.querySelectorAll("th.sort"), function (th) { return th.textContent.indexOf("acceptance") === 0; })[0];
  if (head) {
    head.click();
    var col = Array.prototype.indexOf.call(head.parentNode.children, head);
    sorted = Array.prototype.map.call(document.getElementById("units").tBodies[0].rows, function (r) { return parseFloat(r.cells[col].getAttribute("data-value")); });
  }
  var out = document.createElement("pre");
  out.id = "nv-check";
  out.textContent = JSON.stringify({errors: __nv, images: imgs.length,
    undecoded: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) { return i.getAttribute("src"); }),
    sorted: sorted});
  document.body.appendChild(out);
});
</script>"""


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("NEUROVIS_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def sideways_overflow(page: Path, tmp_path: Path, width: int) -> dict:
    """How far ``page`` scrolls sideways in a window ``width`` CSS px wide: the page is
    opened in an iframe of that width (headless Chromium will not make a window narrower
    than 500 px); returns ``{"client": ..., "scroll": ...}`` widths of its document."""
    wrapper = tmp_path / f"_width_{width}.html"
    wrapper.write_text(f"""<!DOCTYPE html><html><body style="margin:0">
<iframe id="f" src="{page.as_uri()}" style="width:{width}px;height:2400px;border:0"></iframe>
<script>document.getElementById("f").addEventListener("load", function () {{
  var d = document.getElementById("f").contentDocument.documentElement, o = document.createElement("pre");
  o.id = "nv-width"; o.textContent = JSON.stringify({{client: d.clientWidth, scroll: d.scrollWidth}});
  document.body.appendChild(o);
}});</script></body></html>""", encoding="utf-8")
    proc = chromium(["--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom", wrapper.as_uri()],
                    tmp_path / "profile")
    found = re.search(r'<pre id="nv-width">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the page never finished loading; chromium said: {proc.stderr[-3000:]}"
    return json.loads(htmllib.unescape(found.group(1)))


def open_page(page: Path, tmp_path: Path, shot: str) -> dict:
    """Open ``page`` from disk; return the verdict (errors, images, undecoded, console, sorted)."""
    copy = page.with_name(f"_check_{page.name}")
    text = page.read_text(encoding="utf-8")
    assert text.count("<head>") == 1
    copy.write_text(text.replace("<head>", "<head>" + CHECK, 1), encoding="utf-8")
    try:
        proc = chromium(["--virtual-time-budget=10000", "--dump-dom", copy.as_uri()], tmp_path / "profile")
    finally:
        copy.unlink()
    found = re.search(r'<pre id="nv-check">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the page never finished loading; chromium said: {proc.stderr[-3000:]}"
    verdict = json.loads(htmllib.unescape(found.group(1)))
    verdict["console"] = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    target = artifacts(tmp_path) / shot
    chromium(["--window-size=1280,2400", f"--screenshot={target}", page.as_uri()], tmp_path / "profile")
    assert target.is_file() and target.stat().st_size > 10_000, f"no screenshot at {target}"
    return verdict


def assert_clean(verdict: dict, page: Path) -> None:
    assert verdict["errors"] == [], verdict["errors"]
    assert verdict["console"] == [], verdict["console"]
    assert verdict["undecoded"] == [], verdict["undecoded"]
    assert verdict["images"] == len(html_refs(page).srcs) > 0


def test_unit_report_opens_offline_with_every_image_decoded(tmp_path):
    out = tmp_path / "unit"
    nv.write_report(run(nv.UnitCondition(strong_net(), "conv2", 2), pick=40, natural_images=natural_images()), out)
    verdict = open_page(out / "index.html", tmp_path, "unit_report.png")
    assert_clean(verdict, out / "index.html")
    assert verdict["images"] > 40


def test_empty_report_opens_cleanly(tmp_path):
    out = tmp_path / "none"
    nv.write_report(run(nv.ClassCondition(strong_net(), 1), chains=2, steps=5, threshold=1.01), out)
    assert_clean(open_page(out / "index.html", tmp_path, "nothing_passed_report.png"), out / "index.html")


def test_layer_index_opens_and_sorts(tmp_path):
    out = tmp_path / "layer"
    assert main(["layer", "--model", "test_reports:strong_net", "--prior", "test_reports:tiny_prior", "--layer", "conv2",
                 "--units", "0:4", "--chains", "2", "--steps", "10", "--no-attribution", "--bootstrap", "0",
                 "--out", str(out), "--quiet"]) == 0
    verdict = open_page(out / "index.html", tmp_path, "layer_index.png")
    assert_clean(verdict, out / "index.html")
    assert verdict["sorted"] == sorted(verdict["sorted"], reverse=True) and len(verdict["sorted"]) == 4
    unit = out / "unit_0001" / "index.html"
    assert_clean(open_page(unit, tmp_path, "layer_unit_1.png"), unit)


def test_glyph_report_says_what_it_found_and_fits_wide_and_narrow_windows(tmp_path):
    """A glyph-world report with every section (answer line, modes found, missed natural
    clusters, facets, grid, natural images) opens cleanly and needs no sideways scrolling
    in a 1400 px and a 420 px wide window."""
    out = tmp_path / "glyphs"
    assert main(["facets", "--model", "glyphs", "--layer", "fc8", "--unit", "3", "--chains", "4", "--steps", "30",
                 "--natural-count", "300", "--bootstrap", "0", "--no-attribution", "--quiet", "--out", str(out)]) == 0
    page = out / "index.html"
    text = page.read_text()
    assert 'id="answer"' in text and "facet" in text and "modes found" in text
    assert_clean(open_page(page, tmp_path, "glyph_report.png"), page)
    for width in (1400, 420):
        widths = sideways_overflow(page, tmp_path, width)
        assert width - 20 <= widths["client"] <= width and widths["scroll"] <= widths["client"], (width, widths)
