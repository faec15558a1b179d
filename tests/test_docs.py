"""The documentation: the mkdocs site builds in strict mode, and every local link in README.md and docs/ resolves.

`mkdocs build --strict` fails on a broken link or #anchor inside docs/, on a page left out of the nav and on a
docstring mkdocstrings cannot render (mkdocs.yml's `validation` section says which links count as broken). The
link check below needs no mkdocs: it covers the README, which the site does not build, with GitHub's heading ids.
"""

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def _missing_docs_packages() -> list[str]:
    missing = []
    for name in _DOCS_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(name)
    return missing


def test_mkdocs_build_strict(tmp_path):
    missing = _missing_docs_packages()
    if missing:
        pytest.skip(f"the docs packages are not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's notice about MkDocs 2, not a warning
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    elapsed = time.perf_counter() - start
    log = proc.stdout + proc.stderr
    problems = [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert proc.returncode == 0, f"mkdocs build --strict failed after {elapsed:.1f} s:\n" + "\n".join(
        problems or [log]
    )
    site = tmp_path / "site"
    assert (site / "index.html").is_file()
    # the API reference was rendered from the docstrings, not left as `::: module` lines
    envs_page = (site / "reference" / "envs" / "index.html").read_text(encoding="utf-8")
    assert 'id="synjax.envs.registry.make"' in envs_page
    assert ":::" not in envs_page


# ---------------------------------------------------------------- links in README.md and docs/*.md

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.DOTALL)
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
_HTML_ID = re.compile(r"<[a-z]+[^>]*\s(?:id|name)=\"([^\"]+)\"", re.IGNORECASE)


def _without_code(text: str) -> str:
    """Markdown with fenced blocks removed and code spans blanked, so that code is never read as a link."""
    text = _FENCE.sub("", text)
    return _CODE_SPAN.sub("code", text)


def github_slug(heading: str) -> str:
    """GitHub's id for a heading: the rendered text, lower case, punctuation dropped, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every #anchor a Markdown file defines on GitHub (and, with mkdocs.yml's GitHub-style slugify, on the site)."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set(_HTML_ID.findall(text))
    for _, heading in _HEADING.findall(text):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def local_links(path: Path) -> list[str]:
    text = _without_code(path.read_text(encoding="utf-8"))
    links = _INLINE_LINK.findall(text) + _REFERENCE_DEF.findall(text)
    return [
        link for link in links if not re.match(r"[a-z][a-z0-9+.-]*:", link, re.IGNORECASE)
    ]  # http:, mailto:, ...


def broken_links(path: Path) -> list[str]:
    broken = []
    for link in local_links(path):
        target, _, anchor = link.partition("#")
        target_path = (path.parent / target).resolve() if target else path
        if target and not target_path.exists():
            broken.append(
                f"{link}: no such file {target_path.relative_to(ROOT) if target_path.is_relative_to(ROOT) else target_path}"
            )
        elif anchor and target_path.suffix == ".md" and anchor not in anchors(target_path):
            broken.append(f"{link}: {target_path.name} has no heading with the id #{anchor}")
    return broken


def test_github_slug_matches_github():
    assert github_slug("The resumable runner: what chunks and checkpoints cost") == (
        "the-resumable-runner-what-chunks-and-checkpoints-cost"
    )
    assert github_slug("Atari and CarRacing: the Gymnasium host loop (`synjax atari`)") == (
        "atari-and-carracing-the-gymnasium-host-loop-synjax-atari"
    )
    assert github_slug("PPO, A2C + DQN") == "ppo-a2c--dqn"  # GitHub keeps both hyphens


def test_link_checker_finds_a_broken_anchor_and_file(tmp_path):
    page = tmp_path / "page.md"
    other = tmp_path / "other.md"
    other.write_text("# Other\n\n## A section: here\n")
    page.write_text(
        "# Page\n\n[ok](#page) [ok](other.md#a-section-here) [web](https://example.org/#x)\n"
        "[bad](#nowhere) [bad](other.md#nowhere) [bad](missing.md)\n```\n[in code](#nowhere)\n```\n"
    )
    assert [b.split(":")[0] for b in broken_links(page)] == ["#nowhere", "other.md#nowhere", "missing.md"]


@pytest.mark.parametrize(
    "page",
    [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_local_links_resolve(page):
    broken = broken_links(page)
    assert not broken, f"{page.relative_to(ROOT)} has broken links:\n" + "\n".join(broken)
