"""The book as readers meet it.

Part of ``make test`` (fast, no build needed): the book's configuration (execution cached, never off;
MathJax served from the build; the one Binder setting), its Sphinx extensions (verdicts table, launch
buttons, the execution cache's inputs), and the publishing workflow (valid YAML, only commands that exist).

Marked ``book`` and run by ``make test-book`` (needs ``_build/html``, or ``BOOK_HTML``): every page of the
built book opened in headless Chromium over the DevTools protocol, with no network but this machine. On
every page: no error output, every image loaded, the math typeset (MathJax finished, no raw ``\\(`` left
in the prose), no code cell or output wider than its column. Screenshots of three pages go to a
temporary folder, printed at the end. Debian's ``chromium`` is installed with apt-get when missing (as
root, or through ``sudo -n``); ``CHROMIUM`` names another Chromium-based browser instead.
"""

import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
import websocket  # websocket-client (test extra): the DevTools protocol
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import book_tables  # the book's Sphinx extensions, book/_ext
import execution_inputs
import launch_buttons
import offline_math

HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
#: pages whose screenshots are kept: formulas, figures, and a table rendered from recorded numbers
SCREENSHOTS = ("book/descriptors.html", "book/performance.html", "book/how_to_use.html")
VIEWPORT = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


# ------------------------------------------------------------------------------------- configuration
def test_notebooks_are_executed_through_the_cache():
    assert config()["execute"]["execute_notebooks"] == "cache"  # never committed "off"


def test_mathjax_comes_from_the_build_not_a_cdn():
    path = config()["sphinx"]["config"]["mathjax_path"]
    assert not path.startswith(("http:", "https:", "//"))
    assert (offline_math.mathjax_static_folder() / path).is_file()


def test_launch_buttons_wait_for_a_real_repository_url():
    assert not launch_buttons.repository_is_set(launch_buttons.PLACEHOLDER)
    assert not launch_buttons.repository_is_set(launch_buttons.PLACEHOLDER + "/")
    assert not launch_buttons.repository_is_set("")
    assert launch_buttons.repository_is_set("https://github.com/someone/zno-book")
    assert config()["launch_buttons"]["thebe"] is True  # live code once the URL is set


def test_every_page_of_the_toc_exists():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())

    def files(node):
        if isinstance(node, dict):
            if "file" in node:
                yield node["file"]
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []):
                    yield from files(child)

    names = [toc["root"], *files(toc)]
    missing = [name for name in names if not any((ROOT / f"{name}{ext}").exists() for ext in (".md", ".ipynb"))]
    assert missing == []


# ---------------------------------------------------------------------------------------- extensions
VERDICT = {"claim": "NNP poor for nanoparticle optimisation", "metric": "DFT force at the optimum",
           "direction": "lower", "test": "Mann–Whitney", "n": {"NNP": 8, "PLIP": 8}, "effect": 0.41,
           "interval": [0.2, 0.6], "verdict": "reproduced"}


def test_verdict_rows_are_read_with_their_interval_or_p(tmp_path):
    path = tmp_path / "verdicts.json"
    with_p = {key: value for key, value in VERDICT.items() if key != "interval"} | {"p": 0.003}
    path.write_text(json.dumps([VERDICT, with_p]))
    rows = book_tables.verdict_rows(path)
    assert [book_tables.effect_text(row) for row in rows] == ["0.41 [0.2, 0.6]", "0.41 (p = 0.003)"]
    assert book_tables.text(VERDICT["n"]) == "NNP 8, PLIP 8"
    assert book_tables.text(None) == "—"


@pytest.mark.parametrize("field", ["claim", "verdict", "interval"])
def test_a_verdict_row_without_a_field_is_refused_by_name(tmp_path, field):
    path = tmp_path / "verdicts.json"
    path.write_text(json.dumps({"verdicts": [{key: v for key, v in VERDICT.items() if key != field}]}))
    with pytest.raises(ValueError, match="interval or p" if field == "interval" else field):
        book_tables.verdict_rows(path)


def test_the_execution_fingerprint_follows_the_inputs(tmp_path):
    (tmp_path / "pkg").mkdir()
    module = tmp_path / "pkg" / "a.py"
    module.write_text("x = 1\n")
    patterns = execution_inputs.patterns_for("book/conclusions", {"*": ["pkg/**/*.py"], "book/conclusions":
                                                                   ["findings/*.json"]})
    assert patterns == ["pkg/**/*.py", "findings/*.json"]
    before = execution_inputs.fingerprint(tmp_path, patterns)
    assert execution_inputs.fingerprint(tmp_path, patterns) == before
    (tmp_path / "findings").mkdir()
    (tmp_path / "findings" / "bulk.json").write_text("{}")
    added = execution_inputs.fingerprint(tmp_path, patterns)
    module.write_text("x = 2\n")
    changed = execution_inputs.fingerprint(tmp_path, patterns)
    assert len({before, added, changed}) == 3


MYST_NOTEBOOK = """---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  name: python3
  display_name: Python 3
---
# B

```{code-cell} ipython3
print(open("other.txt").read())
```
"""


def small_book(folder: Path) -> None:
    """A book of two notebooks with the book's cache extension: ``a.ipynb`` reads ``input.txt`` (an input
    of every notebook), ``b.md`` (MyST Markdown) also ``other.txt`` (an input of ``b`` alone)."""
    (folder / "_config.yml").write_text(yaml.safe_dump({
        "title": "cache", "execute": {"execute_notebooks": "cache"},
        "sphinx": {"local_extensions": {"execution_inputs": str(ROOT / "book" / "_ext")},
                   "config": {"execution_inputs": {"*": ["input.txt"], "b": ["other.txt"]}}}}))
    (folder / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n  - file: a\n  - file: b\n")
    (folder / "index.md").write_text("# Index\n")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A"),
                                               nbformat.v4.new_code_cell('print(open("input.txt").read())')])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, folder / "a.ipynb")
    (folder / "b.md").write_text(MYST_NOTEBOOK)
    (folder / "input.txt").write_text("1")
    (folder / "other.txt").write_text("1")


def executed(folder: Path) -> set[str]:
    """Build the book in ``folder`` (every page read); the notebooks it executed (not taken from the cache)."""
    result = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", "--all", str(folder)],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {name for name in ("a.ipynb", "b.md") if f"{name}: Executing notebook" in result.stdout}


@pytest.mark.slow
def test_a_rebuild_executes_only_the_notebooks_whose_code_or_inputs_changed(tmp_path):
    small_book(tmp_path)
    assert executed(tmp_path) == {"a.ipynb", "b.md"}
    assert executed(tmp_path) == set()
    (tmp_path / "other.txt").write_text("2")
    assert executed(tmp_path) == {"b.md"}
    notebook = nbformat.read(tmp_path / "a.ipynb", as_version=4)
    notebook.cells[1].source += "\nprint(2)"
    nbformat.write(notebook, tmp_path / "a.ipynb")
    assert executed(tmp_path) == {"a.ipynb"}
    (tmp_path / "input.txt").write_text("2")
    assert executed(tmp_path) == {"a.ipynb", "b.md"}
    assert executed(tmp_path) == set()


# ------------------------------------------------------------------------------------------ workflow
def test_the_publishing_workflow_runs_make_targets_that_exist():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    steps = workflow["jobs"]["build"]["steps"]
    commands = [step["run"] for step in steps if "run" in step]
    assert commands == ["make book", "make test-book"]
    assert any(step.get("uses", "").startswith("actions/upload-pages-artifact") and
               step["with"]["path"] == "_build/html" for step in steps)
    assert workflow["jobs"]["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages")
    targets = [command.split()[1] for command in commands]
    # -n: print the recipes without running them; fails on a target the Makefile does not have
    subprocess.run(["make", "-n", "-C", str(ROOT), *targets], check=True, capture_output=True)


# -------------------------------------------------------------------------------------------- browser
def chromium() -> str:
    """Path of a Chromium executable: ``CHROMIUM``, else Debian's ``chromium``, installed when missing."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    found = shutil.which("chromium")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and shutil.which("sudo") is None:
        pytest.fail("chromium is missing and this user cannot install it: apt-get install -y chromium (as root)")
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "chromium"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return shutil.which("chromium")


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, url: str):
        self.socket = websocket.create_connection(url, timeout=120, suppress_origin=True)
        self.last_id = 0
        self.events = []

    def send(self, method: str, **params):
        self.last_id += 1
        self.socket.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.events:
                if message.get("method") == event:
                    self.events.remove(message)
                    return message
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout} s")
            self.events.append(json.loads(self.socket.recv()))

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
                           timeout=60000)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")


#: what a reader would notice, collected on the open page (images forced to load first)
CHECK_PAGE = r"""
(async () => {
  const images = [...document.images];
  images.forEach(image => { image.loading = 'eager'; });
  const loaded = images.map(image => image.complete ? null :
      new Promise(done => { image.addEventListener('load', done); image.addEventListener('error', done); }));
  await Promise.race([Promise.all(loaded), new Promise(done => setTimeout(done, 20000))]);
  let mathjax = 'not loaded';
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
    mathjax = 'typeset';
  }
  const prose = document.createTreeWalker(document.querySelector('main') || document.body, NodeFilter.SHOW_TEXT,
      {acceptNode: node => node.parentElement.closest('pre, code, script, style, textarea, mjx-container, .highlight')
                           ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
  const rawTex = [];
  while (prose.nextNode()) {
    const text = prose.currentNode.textContent;
    if (/\\\(|\\\[/.test(text)) rawTex.push(text.trim().slice(0, 100));
  }
  const short = element => element.textContent.trim().split('\n')[0].slice(0, 100);
  return {
    mathjax,
    rawTex,
    untypesetMath: [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container')).map(short),
    errors: [...document.querySelectorAll('.output.traceback, .output.error')].map(short),
    brokenImages: images.filter(image => !(image.complete && image.naturalWidth > 0))
                        .map(image => image.getAttribute('src')),
    tooWide: [...document.querySelectorAll('div.highlight pre, div.cell_output')]
        .filter(e => e.scrollWidth > e.clientWidth + 1)
        .map(e => `${e.matches('pre') ? 'code' : 'output'} +${e.scrollWidth - e.clientWidth}px: ${short(e)}`),
  };
})()
"""


def is_redirect(path: Path) -> bool:
    """A page that only sends the browser on (Jupyter Book's root ``index.html``): nothing to read on it."""
    return 'http-equiv="Refresh"' in path.read_text(errors="replace")[:2000]


def pages() -> list[str]:
    """Every HTML page of the built book, relative to its root (empty before a build), redirects left out."""
    if not HTML.is_dir():
        return []
    return sorted(str(path.relative_to(HTML)) for path in HTML.rglob("*.html")
                  if not path.relative_to(HTML).parts[0].startswith("_") and not is_redirect(path))


@pytest.fixture(scope="module")
def site():
    """The built book served on 127.0.0.1 (an ephemeral port); yields its base URL."""
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book in {HTML}: run `make book` first (`make test-book` does)")
    handler = functools.partial(QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium with a fresh profile; yields a DevTools client on its one page."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "--remote-allow-origins=*", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while not port_file.exists() or not port_file.read_text().strip():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("Chromium did not start (no DevToolsActivePort within 60 s)")
        time.sleep(0.2)
    port = port_file.read_text().split()[0]
    targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
    page = next(target for target in targets if target["type"] == "page")
    client = DevTools(page["webSocketDebuggerUrl"])
    client.send("Page.enable")
    client.send("Emulation.setDeviceMetricsOverride", **VIEWPORT)
    yield client
    client.socket.close()
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def screenshot_folder(request):
    """A new temporary folder for the screenshots; its path is printed when the tests end."""
    folder = Path(tempfile.mkdtemp(prefix="book-screenshots-"))
    yield folder
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    reporter.write_line(f"screenshots of {', '.join(SCREENSHOTS)}: {folder}")


@pytest.mark.book
@pytest.mark.parametrize("page", pages() or ["index.html"])
def test_page_reads_as_it_should(page, site, browser, screenshot_folder):
    browser.events.clear()
    browser.send("Page.navigate", url=site + page)
    browser.wait_for("Page.loadEventFired")
    found = browser.evaluate(CHECK_PAGE)
    if page in SCREENSHOTS:
        browser.evaluate("document.querySelector('div.math, figure, table')?.scrollIntoView()")
        image = browser.send("Page.captureScreenshot", format="png")["data"]
        (screenshot_folder / page.replace("/", "_").replace(".html", ".png")).write_bytes(base64.b64decode(image))
    problems = {key: value for key, value in found.items() if key != "mathjax" and value}
    assert problems == {}, f"{page} (MathJax {found['mathjax']})"
