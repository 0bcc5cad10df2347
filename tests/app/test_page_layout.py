"""Every page, ready to demo at any width: a real browser (Debian's Chromium through Playwright)
looks at every element of the Start, CAM, DFF (both modes), Faithfulness, Compare models and Dataset
pages, each with an image or a finished run on screen, and at the dataset report (index.html), at 1024, 1280 and 1920 px. It
fails when

- an element's text is clipped (wider than a box that hides its overflow) or its box falls outside
  the window;
- a control is out of sight in a strip that does not show it, a box scrolls sideways without a
  scrollbar, or a data table is wider than its box (its faint scrollbar would hide a cut column);
- a word is broken mid-word;
- a visible cell reads None or nan;
- a chart's title or annotation runs past its chart;
- a page shows a traceback or a server path;
- the browser asks any origin but the app's own for anything (every request is intercepted);
- on a deployment whose models file, labels and results folder hold hostile names (Markdown links
  and images, HTML, blank lines: tests/_hostile.py), a link or an image comes of one of them, or
  the name is not shown as the text it is.

A screenshot of every page at every width is saved in `test-results/page-layout/` (`LAYOUT_SHOTS`
overrides the folder) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: run as a script too (the screenshot)
from _augment import augmented  # noqa: E402
from _browser import chromium, streamlit_server  # noqa: E402
from _deps import need  # noqa: E402
from _hostile import HOST, NAME, TITLE, environment  # noqa: E402
from _no_paths import forbidden_strings, leaks  # noqa: E402
from conftest import IMAGES, ROOT  # noqa: E402


WIDTHS = (1024, 1280, 1920)
SHOTS = Path(os.environ.get("LAYOUT_SHOTS", ROOT / "test-results" / "page-layout"))
RUN = "samples"  # the results folder the Dataset page shows
#: A models-file title longer than the README example's, on a ViT whose layer names are long.
LONG_TITLE = "Vision Transformer fine-tuned on our three production classes (v2, random weights)"

#: Every problem a person would see, as [kind, text] pairs (see the module docstring). Text nodes
#: are checked word by word: a word is broken when its letters lie on two lines.
_AUDIT = r"""() => {
  const problems = [], width = window.innerWidth;
  const shown = el => {
    const s = getComputedStyle(el), r = el.getBoundingClientRect();
    return s.display !== 'none' && s.visibility !== 'hidden' && parseFloat(s.opacity) > 0.01 && r.width > 2 && r.height > 2;
  };
  const text = el => (el.innerText || el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 60);
  const hides = s => ['hidden', 'clip'].includes(s.overflowX);
  const noScrollbar = el => el.offsetHeight - el.clientHeight < 2;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement, words = node.textContent.trim();
    if (!words || !el || el.closest('script, style, noscript, svg, [aria-hidden="true"], [role="tooltip"]')) continue;
    if (!shown(el)) continue;
    const shut = el.closest('details:not([open])');  // a closed expander's body, not its summary
    if (shut && !el.closest('summary')) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const box = range.getBoundingClientRect();
    if (box.width < 1 || box.height < 1) continue;
    if (box.right > width + 1 || box.left < -1) problems.push(['outside the window', text(el)]);
    // clipped: the text runs past an ancestor that hides its overflow or scrolls it out of sight
    // (an ellipsis is a cut too: every text must fit whole at every width)
    for (let a = el; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      const clips = hides(s) || ['auto', 'scroll'].includes(s.overflowX) || s.textOverflow === 'ellipsis'
        || ['hidden', 'clip'].includes(s.overflowY);
      if (!clips || seen.has(el)) continue;
      const r = a.getBoundingClientRect();
      // a text wholly outside is hidden on purpose (a tooltip's or a screen reader's), not cut
      if (box.right <= r.left || box.left >= r.right || box.bottom <= r.top || box.top >= r.bottom) continue;
      const wide = box.right > r.right + 1 || box.left < r.left - 1;
      const tall = ['hidden', 'clip'].includes(s.overflowY) && (box.bottom > r.bottom + 2 || box.top < r.top - 2);
      if (r.width > 2 && (wide || tall)) {
        problems.push(['clipped', text(el) + ' (in ' + (a.dataset.testid || a.tagName.toLowerCase() + '.' + String(a.className).split(' ')[0]) + ')']);
        seen.add(el);
      }
    }
    // doubled punctuation where a text was shortened ("…." or "..", not an ellipsis "...")
    if (!el.closest('code, pre') && /…[.,;:]|(^|[^.])\.\.(?!\.)/.test(words)) problems.push(['double punctuation', text(el)]);
    // words broken mid-word (a break after '-', '/' or '_' is a break at a word's boundary)
    const re = /[^\s\-\/_]+/g;
    let m;
    while ((m = re.exec(node.textContent)) !== null) {
      if (m[0].length < 2) continue;
      const word = document.createRange();
      word.setStart(node, m.index);
      word.setEnd(node, m.index + m[0].length);
      const tops = new Set([...word.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top / 4)));
      if (tops.size > 1) problems.push(['broken mid-word', m[0]]);
    }
    if (/^(None|nan|NaN|null|undefined)$/.test(words)) problems.push(['a cell reads ' + words, text(el.parentElement)]);
  }
  // a control whose value is wider than its box (a select box's chosen value, a text field's)
  for (const el of document.querySelectorAll('input, textarea, select')) {
    if (shown(el) && el.value && el.type !== 'range' && el.scrollWidth > el.clientWidth + 1) problems.push(['value cut', el.value.slice(0, 60)]);
  }
  // controls out of sight in a strip that hides them (or scrolls without a scrollbar)
  for (const el of document.querySelectorAll('button, [role="button"], [role="tab"], input, select, a[href]')) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const s = getComputedStyle(a);
      const strip = hides(s) || (['auto', 'scroll'].includes(s.overflowX) && noScrollbar(a));
      if (!strip) continue;
      const b = a.getBoundingClientRect();
      if (b.width > 2 && (r.right > b.right + 1 || r.left < b.left - 1)) problems.push(['out of sight', text(el) || el.getAttribute('aria-label') || el.tagName]);
      break;
    }
  }
  // a box that scrolls sideways shows its scrollbar (a table wider than the page, say)
  for (const el of document.querySelectorAll('body *')) {
    const s = getComputedStyle(el);
    if (!['auto', 'scroll'].includes(s.overflowX) || !shown(el)) continue;
    if (el.scrollWidth > el.clientWidth + 1 && noScrollbar(el)) problems.push(['scrolls without a scrollbar', text(el)]);
  }
  // a data grid fits its box: its scrollbar is drawn faintly, so a cut column would pass unseen
  for (const el of document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')) {
    if (shown(el) && el.scrollWidth > el.clientWidth + 1) problems.push(['table wider than its box', text(el.closest('[data-testid="stDataFrame"]'))]);
  }
  // Plotly: titles, annotations, legends, ticks and bar labels inside their chart, none over another
  // text or over a bar (a bar's own label inside it excepted), read from the rendered SVG boxes: each
  // box as the quadrilateral it is on screen (a rotated tick label is no upright rectangle), two boxes
  // meeting unless an axis separates them (the separating axis theorem) by more than `gap` px
  const quad = el => {
    const b = el.getBBox(), m = el.getScreenCTM();
    return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
      .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
  };
  const normals = q => [0, 1].map(i => {
    const dx = q[i + 1][0] - q[i][0], dy = q[i + 1][1] - q[i][1], n = Math.hypot(dx, dy) || 1;
    return [-dy / n, dx / n];
  });
  const meets = (p, q, gap) => ![...normals(p), ...normals(q)].some(([ax, ay]) => {
    const pp = p.map(([x, y]) => x * ax + y * ay), qq = q.map(([x, y]) => x * ax + y * ay);
    return Math.min(...pp) > Math.max(...qq) + gap || Math.min(...qq) > Math.max(...pp) + gap;
  });
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    if (!shown(plot)) continue;
    const p = plot.getBoundingClientRect();
    const texts = [];
    for (const t of plot.querySelectorAll('svg text')) {
      if (!t.textContent.trim() || t.closest('.hoverlayer') || getComputedStyle(t).opacity === '0') continue;
      const r = t.getBoundingClientRect();
      if (r.width <= 0 || r.height <= 0) continue;
      if (r.right > p.right + 1 || r.left < p.left - 1) problems.push(['chart text cut', t.textContent.slice(0, 60)]);
      texts.push([t, quad(t)]);
    }
    for (let i = 0; i < texts.length; i++) {
      for (let j = i + 1; j < texts.length; j++) {
        // texts closer than 1 px touch (a 0 % x tick on the 0 y tick)
        if (meets(texts[i][1], texts[j][1], 1)) problems.push(['chart texts overlap', texts[i][0].textContent.slice(0, 30) + ' / ' + texts[j][0].textContent.slice(0, 30)]);
      }
    }
    const bars = [...plot.querySelectorAll('.bars .point path')].filter(b => b.getBBox().width > 0.5 && b.getBBox().height > 0.5);
    for (const [t, q] of texts) {
      const over = bars.find(b => t.closest('.point') !== b.closest('.point') && meets(q, quad(b), -1));
      if (over) problems.push(['chart text over a bar', t.textContent.slice(0, 60)]);
    }
  }
  // charts side by side start level: a heading that wraps in one column pushes its chart down
  for (const row of document.querySelectorAll('[data-testid="stHorizontalBlock"]')) {
    const tops = [...row.querySelectorAll(':scope > [data-testid="stColumn"]')]
      .map(col => col.querySelector('.js-plotly-plot')).filter(plot => plot && shown(plot))
      .map(plot => plot.getBoundingClientRect().top);
    if (tops.length > 1 && Math.max(...tops) - Math.min(...tops) > 4) problems.push(['charts side by side start at different heights', text(row)]);
  }
  const page = document.body.innerText;
  if (/Traceback \(most recent call last\)/.test(page)) problems.push(['traceback', '']);
  return problems;
}"""

#: The cells of Streamlit's data grids (drawn on a canvas, with an accessible copy in the page).
_GRID_CELLS = r"""() => [...document.querySelectorAll('[data-testid="stDataFrame"] [role="gridcell"], [data-testid="stDataFrame"] td')]
    .map(c => c.textContent.trim())"""


@pytest.fixture(scope="module")
def results_root(tmp_path_factory) -> Path:
    """A finished dataset run (the six samples, three methods, with faithfulness scores) under a results root."""
    import xai_core
    from xai_core import dataset

    root = tmp_path_factory.mktemp("results")
    photos = root.parent / "photos"
    photos.mkdir(exist_ok=True)
    for photo in sorted(IMAGES.iterdir()):
        shutil.copy(photo, photos / photo.name)
    handle = xai_core.load_model("efficientnet_lite0", device="cpu")
    result = dataset.run(handle, str(photos), str(root / RUN), ["gradcam", "hirescam", "layercam"], layer="stage7",
                         evaluate=True, steps=4)
    assert result.explained == 6
    return root


@pytest.fixture(scope="module")
def models_file(tmp_path_factory) -> Path:
    """The README's example models file (examples/models.toml, with the checkpoint and Hugging Face ViT
    that examples/make_checkpoint.py writes), plus the ViT again under LONG_TITLE ("vit_long")."""
    need("transformers", reason="the example models file's ViT needs requirements-hf.txt (CI installs it)")
    base = tmp_path_factory.mktemp("deployment")
    (base / "examples").mkdir()
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_checkpoint.py"), str(base / "out")], check=True,
                   capture_output=True)
    path = base / "examples" / "models.toml"
    path.write_text((ROOT / "examples" / "models.toml").read_text(encoding="utf-8")
                    + f'\n[[model]]\nname = "vit_long"\nsource = "hf:../out/tiny-vit"\ntitle = "{LONG_TITLE}"\n',
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def app(results_root: Path, models_file: Path) -> Iterator[tuple[str, object]]:
    with chromium() as browser, streamlit_server(XAI_RESULTS_ROOT=str(results_root), XAI_MODELS=str(models_file)) as url:
        yield url, browser


def _guard(page, origin: str) -> list[str]:
    """Intercept every request of `page`: one to any origin but `origin` (or a data:/blob: address)
    is refused and listed in the list returned."""
    foreign: list[str] = []

    def route(request_route) -> None:
        address = request_route.request.url
        if address.startswith((origin, "data:", "blob:")):
            request_route.continue_()
        else:
            foreign.append(address)
            request_route.abort()

    page.route("**/*", route)
    page.on("request", lambda request: None if request.url.startswith((origin, "data:", "blob:"))
            or request.url in foreign else foreign.append(request.url))
    return foreign


def _open(browser, url: str, width: int, query: str = ""):
    """A new page of the app at `width` (its foreign requests: `page.foreign`)."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": width, "height": 1000})
    page.foreign = _guard(page, url + "/")
    page.goto(url + "/" + query, timeout=120_000)
    expect(page.get_by_text("Why did the classifier decide that?").first).to_be_visible(timeout=120_000)
    return page


def _go(page, link: str, heading: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name=link).first.click()
    expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=60_000)


def _settle(page, ready: str, timeout: int = 180_000) -> None:
    """Wait for `ready` (a JavaScript condition), then until nothing is running any more."""
    page.wait_for_function(f"() => {ready}", timeout=timeout)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"] button')",
                           timeout=timeout)
    page.wait_for_timeout(1200)  # the last layout and Plotly's transitions


#: The height of the page's content: Streamlit scrolls its main area inside the window.
_CONTENT_HEIGHT = """() => Math.max(document.body.scrollHeight,
    ...[...document.querySelectorAll('[data-testid="stMain"], [data-testid="stAppViewContainer"], section')]
        .map(el => el.scrollHeight))"""


def _tall(page, run):
    """`run()` with the window made as tall as the content (every element laid out in sight), then the
    window as it was."""
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": min(16_000, int(page.evaluate(_CONTENT_HEIGHT)) + 40)})
    page.wait_for_timeout(800)
    try:
        return run()
    finally:
        page.set_viewport_size(size)
        page.wait_for_timeout(300)


def _screenshot(page, path: Path) -> None:
    """The whole page, as tall as its content."""
    _tall(page, lambda: page.screenshot(path=str(path)))


def _audit(page) -> list[list[str]]:
    """`_AUDIT`'s findings, with every element in sight (a box cut by the window's bottom edge is no cut)."""
    return _tall(page, lambda: page.evaluate(_AUDIT))


def _check(page, name: str, width: int, forbidden: list[str]) -> list[str]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    _screenshot(page, SHOTS / f"{name}-{width}.png")
    problems = [f"{name} at {width} px: {kind}: {what!r}" for kind, what in _audit(page)]
    cells = page.evaluate(_GRID_CELLS)
    problems += [f"{name} at {width} px: a table cell reads {c!r}" for c in cells
                 if c in ("None", "nan", "NaN", "null", "undefined")]
    if leaks(page.locator("body").inner_text(), forbidden):
        problems.append(f"{name} at {width} px: shows a server path")
    return problems


HEATMAPS = "document.querySelectorAll('.js-plotly-plot g.hm image').length >= {n}"


#: The object's box the tour's link marks (`?box=`): the Faithfulness page's "Does the map point at
#: the object?" section then shows its outlined maps and its scores' table too.
BOX_QUERY = "?box=60,40,170,200"
LOCALISED = ("[...document.querySelectorAll('h2, h3')].some(h => h.innerText.startsWith('Does the map point at'))"
             " && [...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
             ".some(c => c.innerText.startsWith({caption}))")


def _explanation_pages(page, cam_maps: int, check: Callable[[str], None], marked: bool = False) -> None:
    """The CAM (once `cam_maps` heatmaps are drawn), DFF and Faithfulness pages in turn, each given to
    `check` by name ("cam", "dff", "faithfulness") once it is ready (the Faithfulness page with its
    object's outline and scores when the link `marked` one, else with its box picker)."""
    _go(page, "Compare CAM methods", "Compare CAM methods")
    _settle(page, HEATMAPS.format(n=cam_maps))
    check("cam")
    _go(page, "Concepts (DFF)", "Concepts")
    _settle(page, HEATMAPS.format(n=1))
    check("dff")
    _go(page, "Faithfulness", "Faithfulness: which map can I trust?")
    caption = "'The magenta line'" if marked else "'No object yet'"
    _settle(page, "[...document.querySelectorAll('h2, h3')].some(h => h.innerText.startsWith('Do the methods agree'))"
                  " && document.querySelectorAll('.js-plotly-plot').length >= 5 && "
                  + LOCALISED.format(caption=caption), timeout=300_000)
    check("faithfulness")


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_shows_every_element_whole(app, results_root, width):
    url, browser = app
    forbidden = forbidden_strings(results_root)
    page = _open(browser, url, width, query=BOX_QUERY)
    problems: list[str] = []
    try:
        _settle(page, "document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 6")
        problems += _check(page, "start", width, forbidden)
        _explanation_pages(page, 5, lambda name: problems.extend(_check(page, name, width, forbidden)), marked=True)
        _go(page, "Dataset", "Dataset: rank the methods over many images")
        page.get_by_role("radio", name="Results folder").click()
        _settle(page, "document.querySelectorAll('.js-plotly-plot').length >= 2 && "
                      "document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 12")
        problems += _check(page, "dataset", width, forbidden)
    finally:
        page.close()
    assert problems == [] and page.foreign == [], "\n".join(problems + page.foreign)


@pytest.mark.parametrize("width", WIDTHS)
def test_models_file_models_show_every_element_whole(app, results_root, width):
    """The README's example checkpoint (a long title) on the Start page, among every model's title, and
    a Hugging Face ViT under a longer title (layer names like model.vit.layers.3.layernorm_before) on
    the CAM, DFF and Faithfulness pages."""
    url, browser = app
    forbidden = forbidden_strings(results_root)
    problems: list[str] = []
    page = _open(browser, url, width, query="?model=resnet18_3class")
    try:
        _settle(page, "document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 6")
        problems += _check(page, "example-start", width, forbidden)  # every model's title in the sidebar
    finally:
        page.close()
    page = _open(browser, url, width, query="?model=vit_long")
    try:
        _settle(page, "document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 6")
        _explanation_pages(page, 2, lambda name: problems.extend(_check(page, f"vit-{name}", width, forbidden)))
    finally:
        page.close()
    assert problems == [] and page.foreign == [], "\n".join(problems + page.foreign)


#: The Compare models page's link: model A the bundled EfficientNet-Lite0, model B the models file's ViT
#: under LONG_TITLE (no label in common: each explains its own top class), the object's box outlined.
COMPARE_QUERY = "?model=efficientnet_lite0&against=vit_long&" + BOX_QUERY[1:]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_compare_page_shows_every_element_whole(app, results_root, width):
    """Both models' prediction bars side by side under their titles (one long), the agreement table, and
    per method the row A | B | difference with its two colour bars."""
    url, browser = app
    page = _open(browser, url, width, query=COMPARE_QUERY)
    try:
        _go(page, "Compare models", "Compare models")
        _settle(page, HEATMAPS.format(n=6) + " && document.querySelector('[data-testid=\"stDataFrame\"]') !== null")
        problems = _check(page, "compare", width, forbidden_strings(results_root))
    finally:
        page.close()
    assert problems == [] and page.foreign == [], "\n".join(problems + page.foreign)


#: The DFF page's "Across a class" mode, finished: importance and fidelity charts, the maps, the atlas.
CONCEPTS_READY = ("document.querySelectorAll('.js-plotly-plot').length >= 3 && "
                  "document.querySelectorAll('.js-plotly-plot g.hm image').length >= {k} && "
                  "document.querySelectorAll('[data-testid=\"stMain\"] [data-testid=\"stImage\"] img').length >= {k}")


def concepts_across_a_class(page, folder: Path, photos: int = 8, k: int = 5) -> None:
    """On the open app: the DFF page's "Across a class" mode with `photos` augmented copies of the cat
    photo uploaded (written to `folder`), `k` concepts found, every chart and crop drawn."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in augmented("cat.png", photos):
        (folder / name).write_bytes(data)
        paths.append(str(folder / name))
    _go(page, "Concepts (DFF)", "Concepts")
    page.get_by_role("radio", name="Across a class").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(paths)
    button = page.get_by_role("button", name=f"Find 5 concepts in {photos} images")
    button.click(timeout=120_000)
    _settle(page, CONCEPTS_READY.format(k=k))


@pytest.mark.parametrize("width", WIDTHS)
def test_the_concepts_across_a_class_mode_shows_every_element_whole(app, results_root, tmp_path, width):
    url, browser = app
    page = _open(browser, url, width)
    try:
        concepts_across_a_class(page, tmp_path / "photos")
        problems = _check(page, "concepts-class", width, forbidden_strings(results_root))
    finally:
        page.close()
    assert problems == [] and page.foreign == [], "\n".join(problems + page.foreign)


@pytest.fixture(scope="module")
def bare_url(app) -> Iterator[str]:
    """A server with no results root and no models file."""
    with streamlit_server() as url:
        yield url


@pytest.mark.parametrize("width", WIDTHS)
def test_the_dataset_page_without_results_shows_its_command_whole(app, bare_url, width):
    """No results root: the Dataset page's Results folder view says so and shows the batch command,
    every line of it in sight (a code block scrolls a long line out of sight)."""
    _, browser = app
    page = _open(browser, bare_url, width)
    try:
        _go(page, "Dataset", "Dataset: rank the methods over many images")
        page.get_by_role("radio", name="Results folder").click()
        _settle(page, "document.querySelector('[data-testid=\"stCode\"]') !== null")
        problems = _check(page, "dataset-no-results", width, [])
    finally:
        page.close()
    assert problems == [] and page.foreign == [], "\n".join(problems + page.foreign)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_dataset_report_shows_every_element_whole(app, results_root, width):
    _, browser = app
    page = browser.new_page(viewport={"width": width, "height": 1000})
    foreign = _guard(page, "file://")
    try:
        page.goto((results_root / RUN / "index.html").as_uri())
        page.wait_for_selector(".card")
        page.wait_for_timeout(500)
        problems = _check(page, "report", width, forbidden_strings(results_root))
    finally:
        page.close()
    assert problems == [] and foreign == []


#: Links and images that came of a hostile string: an anchor or an image (HTML or Plotly's SVG) that
#: names the hostile host or a relative "x", and any element with an event handler attribute.
_HOSTILE_ELEMENTS = r"""(host) => {
  const found = [];
  for (const a of document.querySelectorAll('a')) {
    const href = a.getAttribute('href') || a.getAttribute('xlink:href') || '';
    if (href.includes(host) || href.includes('\\')) found.push('a ' + href);
  }
  for (const img of document.querySelectorAll('img, image')) {
    const src = img.getAttribute('src') || img.getAttribute('href') || img.getAttribute('xlink:href') || '';
    if (src.includes(host) || src.includes('\\') || src === 'x') found.push('img ' + src);
  }
  for (const el of document.querySelectorAll('[onerror], [onclick], [onload]')) found.push('handler ' + el.tagName);
  return found;
}"""


@pytest.fixture(scope="module")
def hostile_app(app, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The app of a hostile deployment (tests/_hostile.py), in the same browser: (URL, base folder)."""
    base = tmp_path_factory.mktemp("hostile")
    env = environment(base, IMAGES)
    with streamlit_server(**env) as url:
        yield url, base


#: Layout findings that come of the hostile strings' length alone (60 characters without a space
#: where a label has a few words): not asked of the hostile deployment.
_LENGTH_ONLY = ("value cut", "chart text cut", "chart texts overlap", "broken mid-word")


def test_hostile_names_are_text_on_every_page(app, hostile_app):
    """Every page of a deployment whose model title, labels and results folder are hostile, at one
    width: the layout checks (but `_LENGTH_ONLY`), no foreign request, no link or image of a hostile
    string, and the names shown as the text they are."""
    _, browser = app
    url, base = hostile_app
    width, forbidden = 1280, forbidden_strings(base)
    page = _open(browser, url, width, query=f"?model={NAME}")
    problems: list[str] = []

    def check(name: str) -> None:
        nonlocal problems
        problems += [p for p in _check(page, f"hostile-{name}", width, forbidden)
                     if not any(f" px: {kind}: " in p for kind in _LENGTH_ONLY)]
        problems += [f"{name}: {what}" for what in page.evaluate(_HOSTILE_ELEMENTS, HOST)]

    try:
        _settle(page, "document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 6")
        text = page.locator("body").inner_text().replace("\u2060", "")
        if f"Model: {TITLE}" not in text:  # the banner shows the title as it was written
            problems.append("start: the model's title is not shown as written")
        check("start")
        _explanation_pages(page, 5, check)
        _go(page, "Dataset", "Dataset: rank the methods over many images")
        page.get_by_role("radio", name="Results folder").click()
        _settle(page, "document.querySelectorAll('.js-plotly-plot').length >= 2 && "
                      "document.querySelectorAll('[data-testid=\"stImage\"] img').length >= 8")
        check("dataset")
        if "<img src=x onerror=alert(1)>" not in page.locator("body").inner_text():  # a class folder, as text
            problems.append("dataset: the class folder's name is not shown as written")
    finally:
        page.close()
    assert problems == [] and page.foreign == [], "\n".join(problems + page.foreign)


if __name__ == "__main__":  # PYTHONPATH=. python tests/app/test_page_layout.py: the README's screenshot of the mode
    import tempfile

    out = ROOT / "assets" / "screenshot_concepts.png"
    with streamlit_server() as server_url, chromium() as chrome, tempfile.TemporaryDirectory() as photos_dir:
        shot = _open(chrome, server_url, 1280)
        shot.set_viewport_size({"width": 1280, "height": 1900})
        concepts_across_a_class(shot, Path(photos_dir))
        shot.get_by_role("heading", name="How much each concept counts").evaluate("h => h.scrollIntoView()")
        shot.mouse.move(5, 5)  # off the charts: no toolbar shown over a title
        shot.wait_for_timeout(1000)
        shot.screenshot(path=str(out))
    print(out)
