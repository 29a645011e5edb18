"""The book pipeline: every chapter executes in the smoke profile, the HTML builds
strictly and holds the chapters' figures; failures fail; project files agree."""
from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from minibook import write_book
from sparsenb import book as bk
from sparsenb.cache import PROJECT_ROOT
from sparsenb.checks import ArgumentError

pytestmark = pytest.mark.book


def _data_dir() -> Path:
    return Path(os.environ.get("SPARSENB_DATA") or PROJECT_ROOT.parent / "shared" / "data").resolve()


# smoke_build (conftest.py): every chapter executed with the smoke profile and the HTML built, once per session


def _chapter_stems():
    return [p.stem for p in bk.Book(PROJECT_ROOT).chapters()]


def test_book_has_chapters():
    assert "frontend" in _chapter_stems()


@pytest.mark.parametrize("stem", _chapter_stems())
def test_chapter_executed_without_errors(smoke_build, stem):
    out, _ = smoke_build
    nb = nbformat.read(out / "book" / f"{stem}.ipynb", as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and 'profile = "smoke"' in injected[0].source
    assert "hide-input" in injected[0].metadata["tags"]  # the page opens with its narrative, not 30 parameters
    # the default parameters cell is hidden so that the page shows what ran
    default = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert all("remove-cell" in c.metadata["tags"] for c in default)


def test_html_index_and_chapter_figures(smoke_build):
    out, index = smoke_build
    assert index == out / "_build" / "html" / "index.html" and index.is_file()
    page = (out / "_build" / "html" / "book" / "frontend.html").read_text()
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', page)
    assert len(images) >= 4, images
    for src in images:
        assert (out / "_build" / "html" / "book" / src).resolve().is_file(), src
    for name in ("fig-frontend-digit", "fig-frontend-digits", "fig-basis-functions", "fig-energy"):
        assert f'id="{name}"' in page, name
    # glued numbers were substituted, none left as raw roles
    assert "{glue" not in page and "glue:text" not in page
    assert re.search(r"Coiflet-1\s+keeps\s*(<[^>]+>)*\s*\d+\.\d%", page), "energy number missing"
    assert "smoke" in page  # the page says which profile produced it


def test_pages_load_no_remote_script_and_bundle_mathjax(smoke_build):
    """Readers open the book offline: no page loads a script from the network, and MathJax is bundled."""
    out, _ = smoke_build
    html = out / "_build" / "html"
    pages = sorted(html.rglob("*.html"))
    assert len(pages) >= 6
    for page in pages:
        text = page.read_text()
        remote = re.findall(r'<script[^>]+src="((?:https?:)?//[^"]+)"', text)
        assert not remote, f"{page.name} loads {remote}"
    chapter = (html / "book" / "frontend.html").read_text()
    local = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', chapter)
    assert local and all((html / "book" / src).resolve().is_file() for src in local), local


def test_figures_numbered_per_chapter_with_downloads(smoke_build):
    """Every chapter's figures are Fig. <chapter>.1, .2, ... with their anchor, and each caption links the
    figure's PNG and SVG, named after the anchor."""
    out, _ = smoke_build
    html = out / "_build" / "html"
    pages = bk.Book(PROJECT_ROOT).pages()  # pages[0] is the unnumbered introduction
    numbered = 0
    for number, source in enumerate(pages[1:], 1):
        page = (html / "book" / f"{source.stem}.html").read_text()
        figures = re.findall(r'<figure[^>]*id="([^"]+)".*?</figure>', page, flags=re.S)
        blocks = re.findall(r'<figure[^>]*id="[^"]+".*?</figure>', page, flags=re.S)
        captions = [re.search(r'caption-number">Fig\. ([\d.]+) ', b).group(1) for b in blocks]
        assert captions == [f"{number}.{i}" for i in range(1, len(blocks) + 1)], (source.stem, captions)
        for anchor, block in zip(figures, blocks):
            assert f'href="#{anchor}"' in block, f"{anchor}: no link to its anchor"
            links = re.findall(r'href="([^"]+_downloads/[^"]+)"', block)
            assert sorted(Path(u).name for u in links) == [f"{anchor}.png", f"{anchor}.svg"], (anchor, links)
            for url in links:
                assert (html / "book" / url).resolve().stat().st_size > 1000, url
            svg = next((html / "book" / u).resolve() for u in links if u.endswith(".svg"))
            assert svg.read_text().lstrip().startswith(("<?xml", "<svg")), f"{svg.name} is not an SVG"
        numbered += len(blocks)
    assert numbered >= 20  # the chapters' figures were found at all


def test_bibliography_and_api_reference(smoke_build):
    """Chapters cite into the references page, which lists the paper; the API page documents every public
    module of sparsenb, and a chapter links a formula to the function that computes it."""
    out, _ = smoke_build
    book_html = out / "_build" / "html" / "book"
    refs = (book_html / "references.html").read_text()
    assert "Robust adversarial learning via sparsifying front ends" in refs and "1810.10625" in refs
    frontend = (book_html / "frontend.html").read_text()
    assert re.search(r'href="references\.html#id\d+"[^>]*>Gopalakrishnan', frontend), "no citation of the paper"
    assert 'href="api.html#sparsenb.frontend.SparsifyingFrontEnd"' in frontend
    api = (book_html / "api.html").read_text()
    for module in ("sparsenb.frontend", "sparsenb.basis", "sparsenb.attacks", "sparsenb.theory.linear", "sparsenb.book"):
        assert f'id="module-{module}"' in api, module
    assert 'id="sparsenb.basis.gamma"' in api and 'id="sparsenb.frontend.SparsifyingFrontEnd"' in api


def test_api_reference_lists_every_public_module():
    import pkgutil

    import sparsenb

    text = bk.api_reference()
    modules = {m.name for m in pkgutil.walk_packages(sparsenb.__path__, "sparsenb.") if "._" not in m.name}
    assert modules and all(f".. automodule:: {m}\n" in text for m in modules)
    assert ".. automodule:: sparsenb.theory._common" not in text  # private modules stay out
    # a package's section is its docstring: its members are documented in their own modules, once
    assert ".. automodule:: sparsenb.theory\n```" in text and ".. automodule:: sparsenb.frontend\n   :members:" in text


def test_export_figures_names_files_after_the_anchor(tmp_path):
    import base64

    png = (PROJECT_ROOT / "book").parent / "_toc.yml"  # any bytes stand in for the image data
    data = base64.b64encode(png.read_bytes()).decode()
    record = {"scrapbook": {"name": "fig_a", "mime_prefix": "application/papermill.record/"}}
    glued = nbformat.v4.new_output(
        "display_data",
        data={"application/papermill.record/image/png": data, "application/papermill.record/image/svg+xml": "<svg/>"},
        metadata=record,
    )
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("page.figure(fig, 'fig_a')", outputs=[glued]),
        nbformat.v4.new_markdown_cell("```{glue:figure} fig_a\n:name: fig-a\n\nCaption.\n```"),
    ])
    path = tmp_path / "ch.ipynb"
    nbformat.write(nb, path)
    written = bk.export_figures(path)
    bk.export_figures(path)  # again: the same files, the links once
    assert {p.name for p in written["fig-a"]} == {"fig-a.png", "fig-a.svg"}
    assert (tmp_path / "figures" / "ch" / "fig-a.png").read_bytes() == png.read_bytes()
    source = nbformat.read(path, as_version=4).cells[1].source
    assert source.count("Download this figure:") == 1 and "{download}`SVG <figures/ch/fig-a.svg>`" in source
    assert source.endswith("```")


def test_rebuild_skips_finished_chapters(smoke_build):
    out, _ = smoke_build
    book = bk.Book(PROJECT_ROOT)
    source = book.chapter("frontend")
    params = bk.chapter_parameters("smoke", "frontend", book)
    path, seconds = bk.execute_chapter(source, out / "book", params, _data_dir(), progress=False)
    assert seconds is None and path.is_file()
    # other parameters are another execution
    stamp = json.loads((out / "book" / ".executed" / "frontend.json").read_text())
    assert stamp["parameters"] == params


def _glued_values(path: Path) -> dict[str, str]:
    """Every value a notebook glued as text (figures excluded), by name."""
    nb = nbformat.read(path, as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            record = o.get("metadata", {}).get("scrapbook", {})
            prefix, data = record.get("mime_prefix", ""), o.get("data", {})
            if record.get("name") and prefix + "text/plain" in data and prefix + "image/png" not in data:
                out[record["name"]] = data[prefix + "text/plain"]
    return out


def test_two_executions_from_empty_caches_glue_identical_numbers(tmp_path, monkeypatch):
    """Training and attacks are seeded: the binary chapter (SVMs, two-layer nets, attack grids), executed
    twice from empty caches, glues the same numbers (and glues some at all)."""
    book = bk.Book(PROJECT_ROOT)
    params = bk.chapter_parameters("smoke", "mnist_binary", book)
    glued = []
    for run in ("a", "b"):
        monkeypatch.setenv("SPARSENB_CACHE", str(tmp_path / f"cache-{run}"))
        path, _ = bk.execute_chapter(book.chapter("mnist_binary"), tmp_path / run, params, _data_dir(), progress=False)
        glued.append(_glued_values(path))
    assert len(glued[0]) >= 10
    assert glued[0] == glued[1]
    assert any((tmp_path / "cache-a" / "checkpoints").iterdir()), "the chapter trained into its own cache"


# ---------------------------------------------------------------------------
# failures fail
# ---------------------------------------------------------------------------
def _mini_book(root: Path, chapter_body: str, page_body: str = "# Home\n") -> bk.Book:
    return write_book(root, {"ch": chapter_body}, page_body)


def test_mini_book_builds(tmp_path):
    """The control for the two failure tests below: the same book, without the fault, builds."""
    book = _mini_book(tmp_path / "src", "```{code-cell} ipython3\nprint(1)\n```\n")
    index = bk.build("smoke", data=tmp_path, out=tmp_path / "out", progress=False, book=book)
    assert index.is_file()


def test_failing_cell_fails_the_build(tmp_path):
    book = _mini_book(tmp_path / "src", "```{code-cell} ipython3\nx = 1\nraise RuntimeError('boom')\n```\n")
    with pytest.raises(bk.ChapterError, match="boom") as failure:
        bk.build("smoke", data=tmp_path, out=tmp_path / "out", progress=False, book=book)
    assert (tmp_path / "out" / "book" / "ch.failed.ipynb").is_file()
    assert not (tmp_path / "out" / "book" / "ch.ipynb").exists()
    # the error names the chapter and the failing cell by its line in the source (the line after the fence)
    lines = (tmp_path / "src" / "book" / "ch.md").read_text().splitlines()
    line = lines.index("x = 1") + 1
    assert "chapter ch failed in cell" in str(failure.value) and f"line {line} of book/ch.md (x = 1)" in str(failure.value)
    assert failure.value.ename == "RuntimeError" and "\x1b[" not in str(failure.value)  # no terminal colours


def test_broken_reference_fails_the_build(tmp_path):
    book = _mini_book(
        tmp_path / "src", "```{code-cell} ipython3\nprint(1)\n```\n", "# Home\n\nSee {ref}`no-such-label`.\n"
    )
    with pytest.raises(subprocess.CalledProcessError):
        bk.build("smoke", data=tmp_path, out=tmp_path / "out", progress=False, book=book)


def test_cli_reports_failure_with_nonzero_exit(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _mini_book(tmp_path, "```{code-cell} ipython3\nraise ValueError('bad cell')\n```\n")
    assert bk.main(["build", "--profile", "smoke", "--no-progress", "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "chapter ch failed in cell" in err and "line " in err
    assert err.count("ValueError: bad cell") == 1, err  # the traceback, once


def test_build_streams_cell_output_under_the_cell(tmp_path, capfd):
    """With progress on, what a cell prints reaches the terminal while it runs, under a header naming the cell;
    the kernel's transport warning does not."""
    book = _mini_book(tmp_path / "src", "```{code-cell} ipython3\nimport sys\nprint('step 1 of 2', file=sys.stderr)\n```\n")
    bk.build("smoke", data=tmp_path, out=tmp_path / "out", progress=True, book=book)
    err = capfd.readouterr().err
    header = next(line for line in err.splitlines() if "line " in line and "book/ch.md: import sys" in line)
    assert err.index(header) < err.index("step 1 of 2") < err.index("[1/1] ch: executed in")
    assert "without encryption" not in err and "writing output" not in err  # no transport warning, no Sphinx status


# ---------------------------------------------------------------------------
# project files agree with each other
# ---------------------------------------------------------------------------
def test_profiles_are_overrides_of_the_chapters_parameters_cells():
    """Every chapter runs under every profile: the laptop profile is its parameters cell, the others change
    only parameters the cell has, with values of the same type."""
    book = bk.Book(PROJECT_ROOT)
    profiles = bk.load_profiles(book)
    for source in book.chapters():
        defaults = bk.layout.default_parameters(source)
        assert defaults.get("profile") == "laptop", f"{source.name}: the parameters cell must set profile = 'laptop'"
        assert bk.chapter_parameters("laptop", source.stem, book) == defaults
        assert not profiles["laptop"].get(source.stem), f"[laptop.{source.stem}] repeats the parameters cell"
        for profile in ("smoke", "full"):
            params = bk.chapter_parameters(profile, source.stem, book)
            assert set(params) == set(defaults) and params["profile"] == profile
            changed = {k for k in params if params[k] != defaults[k]} - {"profile"}
            assert changed == set(profiles[profile].get(source.stem, {})), (profile, source.stem)  # only real overrides


def test_an_override_must_name_a_parameter_of_the_same_type(tmp_path):
    root = tmp_path / "b"
    book = write_book(root, {"ch": "```{code-cell} ipython3\nx = 1\n```\n"})
    cell = (root / "book" / "ch.md").read_text().replace('profile = "laptop"', 'profile = "laptop"\nn = 3\nrate = 0.5')
    (root / "book" / "ch.md").write_text(cell)
    toml = (root / "book" / "profiles.toml").read_text()
    for table, message in (("n = 7", None), ("n = 7.5", "type"), ("rate = 1", "type"), ("m = 1", "not a parameter")):
        (root / "book" / "profiles.toml").write_text(toml.replace("[smoke.ch]\n", f"[smoke.ch]\n{table}\n"))
        if message is None:
            assert bk.chapter_parameters("smoke", "ch", book) == {"profile": "smoke", "n": 7, "rate": 0.5}
        else:
            with pytest.raises(ValueError, match=message):
                bk.chapter_parameters("smoke", "ch", book)


def _requirement_names(reqs) -> dict[str, str]:
    out = {}
    for r in reqs:
        m = re.match(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)", r)
        out[m.group(1).lower().replace("_", "-")] = m.group(3).replace(" ", "")
    return out


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(pyproject["dependencies"])
    for extra in pyproject["optional-dependencies"].values():
        wanted += [r for r in extra if not r.startswith("sparsenb")]
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = [r for r in pip if not r.startswith("-e")]
    assert _requirement_names(listed) == _requirement_names(wanted)
    assert "-e ." in pip
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"])


def test_ci_runs_the_readme_test_command():
    readme = (PROJECT_ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.+?)\n```", readme, flags=re.S)
    test_cmd = [c for c in commands if "pytest" in c]
    build_cmd = [c for c in commands if "sparsenb-book build --profile laptop" in c]
    assert len(test_cmd) == 1 and len(build_cmd) == 1
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert test_cmd[0].strip() in ci
    assert "SPARSENB_DATA" in ci and "shared/data" in ci


def test_toc_pages_exist():
    book = bk.Book(PROJECT_ROOT)
    toc = yaml.safe_load((PROJECT_ROOT / "_toc.yml").read_text())
    assert toc["format"] == "jb-book"
    assert len(book.pages()) >= 2


def test_a_claim_holds_or_fails_the_build(tmp_path):
    """claim() shows a sentence whose condition holds and stops the build when it does not."""
    from sparsenb.book.page import ClaimError, claim

    assert claim(True, "Twice two is four.").data == "Twice two is four."
    with pytest.raises(ClaimError, match="No attack broke"):
        claim(bool(3 > 4), "No attack broke a certified image.")
    with pytest.raises(ArgumentError, match="^condition"):
        claim("yes", "A string is not a check.")
    holds = "```{code-cell} ipython3\nfrom sparsenb.book.page import claim\nclaim(2 + 2 == 4, 'Two and two make four.')\n```\n"
    book = _mini_book(tmp_path / "ok", holds)
    index = bk.build("smoke", data=tmp_path, out=tmp_path / "ok-out", progress=False, book=book)
    assert "Two and two make four." in (index.parent / "book" / "ch.html").read_text()
    broken = holds.replace("2 + 2 == 4", "2 + 2 == 5")
    book = _mini_book(tmp_path / "broken", broken)
    with pytest.raises(bk.ChapterError, match="ClaimError"):
        bk.build("smoke", data=tmp_path, out=tmp_path / "broken-out", progress=False, book=book)
