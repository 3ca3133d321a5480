"""The bundled DOCX house style: what tools/make_reference_docx.py makes, and A4."""

import importlib.util
import io
import re
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "src" / "trialplan" / "data" / "reference.docx"


def _parts(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name).decode() for name in z.namelist()
                if name.endswith(".xml")}


def test_reference_docx_is_a4_with_page_numbers_and_table_styles():
    parts = _parts(COMMITTED.read_bytes())
    body = parts["word/document.xml"]
    assert re.search(r'<w:pgSz w:w="11906" w:h="16838"', body)  # A4 portrait, twips
    margins = re.search(r"<w:pgMar [^>]*>", body).group(0)
    for side in ("top", "right", "bottom", "left"):  # 2.5 cm
        assert f'w:{side}="1417"' in margins
    footer = "".join(v for k, v in parts.items() if k.startswith("word/footer"))
    for field in ("DOCPROPERTY footer", " PAGE ", " NUMPAGES "):
        assert field in footer
    styles = parts["word/styles.xml"]
    for name, half_points in (("Table Text", 18), ("Table Small", 16)):
        block = re.search(rf'<w:name w:val="{name}"/>.*?</w:style>', styles, re.S).group(0)
        assert f'<w:sz w:val="{half_points}"/>' in block
    lead = re.search(r'<w:name w:val="Table Lead-in"/>.*?</w:style>', styles, re.S).group(0)
    assert "<w:keepNext/>" in lead


def test_committed_reference_docx_is_what_the_script_makes():
    pytest.importorskip("docx")
    spec = importlib.util.spec_from_file_location("make_reference_docx",
                                                  ROOT / "tools" / "make_reference_docx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh, committed = _parts(module.build()), _parts(COMMITTED.read_bytes())
    for name in ("word/styles.xml", "word/document.xml"):
        assert fresh[name] == committed[name], "run: python tools/make_reference_docx.py"
