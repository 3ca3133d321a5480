"""No code block in the documentation needs horizontal scrolling.

The docs theme shows about 87 characters of code across the text column (measured
in Chromium at 1200 px), so commands and code in docs/*.md and the example
scripts they include stay within 84: long commands are wrapped with backslash
continuations.  Output lines of ```console blocks are exempt (the doc tests
compare them with the real output); the site's stylesheet wraps those instead.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 84


def _code_lines(text: str):
    """(line number, line) of every line inside a fenced block, output lines left out."""
    fence = language = None
    continued = False
    for number, line in enumerate(text.splitlines(), 1):
        if fence is None:
            opening = re.match(r"\s*(`{3,})\s*(\S*)", line)
            if opening:
                fence, language = opening.group(1), opening.group(2)
            continue
        if line.strip() == fence:
            fence = None
            continue
        if language == "console":
            is_command = line.startswith("$ ") or continued
            continued = is_command and line.rstrip().endswith("\\")
            if not is_command:
                continue  # a command's output
        yield number, line


def test_docs_code_lines_fit_the_page():
    long = [f"{page.name}:{number}: {len(line)} characters"
            for page in sorted((ROOT / "docs").glob("*.md"))
            for number, line in _code_lines(page.read_text())
            if len(line) > WIDTH]
    assert long == []


def test_example_scripts_shown_in_the_docs_fit_the_page():
    long = [f"{script.name}:{number}: {len(line)} characters"
            for script in sorted((ROOT / "examples").glob("*.py"))
            for number, line in enumerate(script.read_text().splitlines(), 1)
            if len(line) > WIDTH]
    assert long == []
