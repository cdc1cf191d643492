"""The ```python blocks of every docs/*.md page run and their assertions hold.

Each page's blocks run in order in one namespace, in a temporary working directory, so a
page can build on its earlier blocks. The blocks check the documented formulas against
the code; a failure names the page and the block.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
_BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    """The ```python blocks of ``page``, in order."""
    return _BLOCK.findall(page.read_text(encoding="utf-8"))


def test_docs_exist_and_blocks_are_found():
    names = {p.name for p in PAGES}
    for required in (
        "README.md",
        "architecture.md",
        "workloads.md",
        "hardware.md",
        "cost-model.md",
        "scheduling.md",
        "placement.md",
        "search.md",
        "figures.md",
    ):
        assert required in names, f"docs/{required} is missing"
    # the pages that state formulas check them in code
    for name in (
        "workloads.md",
        "hardware.md",
        "cost-model.md",
        "scheduling.md",
        "placement.md",
        "search.md",
    ):
        blocks = python_blocks(DOCS / name)
        assert blocks, f"docs/{name} has no ```python block checking its formulas"
        assert any("assert" in b for b in blocks), f"docs/{name}: no block asserts anything"


def test_block_extraction_sees_a_failing_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n```python\nx = 1\n```\n\n```bash\nls\n```\n\n```python\nassert x == 2\n```\n"
    )
    blocks = python_blocks(page)
    assert blocks == ["x = 1\n", "assert x == 2\n"]
    ns: dict = {}
    exec(compile(blocks[0], "page", "exec"), ns)  # noqa: S102
    with pytest.raises(AssertionError):
        exec(compile(blocks[1], "page", "exec"), ns)  # noqa: S102


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_docs_python_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": f"docs_{page.stem}"}
    for k, block in enumerate(python_blocks(page), start=1):
        started = time.perf_counter()
        try:
            exec(compile(block, f"docs/{page.name} (python block {k})", "exec"), ns)  # noqa: S102
        except Exception as exc:
            pytest.fail(f"docs/{page.name}, python block {k} raised {type(exc).__name__}: {exc}")
        took = time.perf_counter() - started
        # fast by design; a generous cap so a loaded CI machine does not flake
        assert took < 30, f"docs/{page.name}, python block {k} took {took:.1f} s"
