"""The procurement dossier as PDF (fpdf2, pure Python), readable on paper.

The built-in PDF fonts cover Latin-1 only: any other character is printed as `\\uXXXX`, so a
name or path is never silently altered. The creation date is the scan's finish time, so the
same recorded scan always gives the same bytes.
"""

from __future__ import annotations

from datetime import datetime

from fpdf import FPDF
from fpdf.enums import WrapMode, XPos, YPos

from verifier.evidence.dossier import Section, Table, sections, title, verdict_line
from verifier.evidence.facts import NOT_RECORDED, EvidenceFacts
from verifier.printable import printable

_FONT = "Helvetica"
_LINE = 4.2


def latin1(text: str) -> str:
    """`text` with every character outside Latin-1 (and control characters) escaped."""
    out = []
    for char in "\n".join(printable(line) for line in text.split("\n")):
        code = ord(char)
        if code < 32 and char not in "\n":
            out.append(f"\\x{code:02x}")
        elif code > 255:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


class _Dossier(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(format="A4")
        self._footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FONT, size=7)
        self.cell(0, 5, latin1(self._footer_text), align="L")
        self.cell(0, 5, f"page {self.page_no()}/{{nb}}", align="R")


def _table(pdf: FPDF, table: Table, *, font_size: float = 7, headings: bool = True) -> None:
    pdf.set_font(_FONT, size=font_size)
    with pdf.table(
        col_widths=table.widths,
        wrapmode=WrapMode.WORD,
        line_height=_LINE,
        text_align="LEFT",
        first_row_as_headings=headings,
    ) as rendered:
        if headings:
            header = rendered.row()
            for name in table.headers:
                header.cell(latin1(name))
        for values in table.rows:
            row = rendered.row()
            for value in values:
                row.cell(latin1(value))
    pdf.ln(2)


def _section(pdf: FPDF, section: Section) -> None:
    if pdf.get_y() > pdf.h - 40:
        pdf.add_page()
    pdf.set_font(_FONT, style="B", size=11)
    pdf.multi_cell(0, 7, latin1(section.title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if section.note:
        pdf.set_font(_FONT, style="I", size=8)
        pdf.multi_cell(
            0,
            _LINE,
            latin1(section.note),
            new_x=XPos.LMARGIN,
            new_y=YPos.NEXT,
            align="L",
        )
        pdf.ln(1)
    if section.fields:
        fields = Table(("", ""), tuple(section.fields), (50, 132))
        _table(pdf, fields, font_size=8, headings=False)
    for table in section.tables:
        _table(pdf, table)


def render_pdf(facts: EvidenceFacts) -> bytes:
    """The dossier as PDF bytes."""
    footer = f"verifier {facts.report.tool_version}, scan {facts.report.scan_id}"
    pdf = _Dossier(footer)
    pdf.set_creation_date(datetime.fromisoformat(facts.report.finished_at))
    pdf.set_title(latin1(title(facts)))
    pdf.set_creator(f"verifier {facts.report.tool_version}")
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.set_margins(14, 14, 14)
    pdf.add_page()
    pdf.set_font(_FONT, style="B", size=15)
    pdf.multi_cell(0, 8, latin1(title(facts)), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, style="B", size=10)
    pdf.set_text_color(5, 98, 15) if facts.passed else pdf.set_text_color(170, 0, 0)
    pdf.multi_cell(
        0, 6, latin1(verdict_line(facts)), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L"
    )
    pdf.set_text_color(0, 0, 0)
    pdf.set_font(_FONT, size=8)
    pdf.multi_cell(
        0,
        _LINE,
        latin1(
            "Generated from the recorded scan; nothing was fetched to write it. "
            f'"{NOT_RECORDED}" marks facts the scan did not record.'
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
        align="L",
    )
    pdf.ln(2)
    for section in sections(facts):
        _section(pdf, section)
    return bytes(pdf.output())
