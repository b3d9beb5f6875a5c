"""LaTeX text from run records: every character LaTeX treats specially is escaped, so a record cannot add
commands (`\\input{...}`) to report.tex; the table's own markup goes in through placeholders.

    cell = f"{BOLD}81.0{PM}1.6{END}"       # built with the placeholders
    latex_text(cell)                        # -> \\textbf{81.0$\\pm$1.6}, any other text escaped
"""

from __future__ import annotations

__all__ = ["BOLD", "END", "PM", "latex_text"]

BOLD, END, PM = "\x00bold\x00", "\x00end\x00", "\x00pm\x00"     # markup placeholders (no record holds NUL)

_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "^":
            r"\textasciicircum{}", "_": r"\_", "~": r"\textasciitilde{}", "%": r"\%", "<": r"\textless{}",
            ">": r"\textgreater{}", "|": r"\textbar{}", "\x00": ""}


def latex_text(text) -> str:
    """str(text) with every LaTeX special escaped (control characters dropped), then the placeholders as
    markup."""
    text = str(text)
    for mark, tex in ((BOLD, "\x01"), (END, "\x02"), (PM, "\x03")):   # survive the escaping
        text = text.replace(mark, tex)
    out = "".join(_SPECIAL.get(ch, ch) for ch in text if ch in "\x01\x02\x03" or ch >= " " or ch == "\t")
    return out.replace("\x01", r"\textbf{").replace("\x02", "}").replace("\x03", r"$\pm$")
