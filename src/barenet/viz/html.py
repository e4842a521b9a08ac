"""Small HTML builders for self-contained reports: escaped text, tables, embedded PNGs.

Everything is inline (CSS in a <style> element, images as base64 ``data:`` URIs), so a report
is one file that opens anywhere, offline, and references nothing outside itself.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
main { max-width: 1280px; margin: 0 auto; padding: 1.5rem 2rem 3rem; background: #fff; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
p.sub { color: #666; margin-top: 0; }
.table { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #f0f0f0; }
td.text, th.text { text-align: left; }
tr.best td { background: #eef7ee; font-weight: 600; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9rem; margin-top: 0.3rem; }
pre { background: #f6f6f6; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
nav a { margin-right: 0.9rem; }
.note { color: #8a5a00; }
"""


def esc(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, pct: bool = False, digits: int = 4) -> str:
    """A table cell's text: floats rounded (or as percentages), None/NaN as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if pct:
            return f"{100 * value:.2f}%"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e7):
            return f"{value:.3g}"
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:#.{digits}g}".rstrip(".")  # keep trailing zeros: 1.000, not 1
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    text_cols: Iterable[int] = (0,),
    highlight: int | None = None,
) -> str:
    """A <table>; cells are pre-formatted strings (escaped here). ``text_cols`` are
    left-aligned; row number ``highlight`` gets the ``best`` class. The table sits in a
    ``div.table`` that scrolls sideways, so a wide table never widens the page (a phone)."""
    text = set(text_cols)

    def cell(tag: str, i: int, v: Any) -> str:
        cls = ' class="text"' if i in text else ""
        return f"<{tag}{cls}>{esc(v)}</{tag}>"

    out = [
        '<div class="table"><table>',
        "<thead><tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr></thead>",
        "<tbody>",
    ]
    for r, row in enumerate(rows):
        cls = ' class="best"' if r == highlight else ""
        out.append(f"<tr{cls}>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def key_values(items: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of name/value pairs."""
    return table(["quantity", "value"], [(k, v) for k, v in items], text_cols=(0, 1))


def data_uri(png: str | Path) -> str:
    """``data:image/png;base64,...`` of a PNG file."""
    return "data:image/png;base64," + base64.b64encode(Path(png).read_bytes()).decode("ascii")


def figure(png: str | Path, caption: str = "", alt: str = "") -> str:
    """A <figure> with the PNG embedded and an optional caption."""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{data_uri(png)}" alt="{esc(alt or Path(png).stem)}">{cap}</figure>'


def pre(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def para(text: str, cls: str = "") -> str:
    c = f' class="{esc(cls)}"' if cls else ""
    return f"<p{c}>{esc(text)}</p>"


def section(anchor: str, title: str, body: Sequence[str]) -> str:
    return (
        f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n' + "\n".join(body) + "\n</section>"
    )


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, Sequence[str]]]) -> str:
    """A whole document: title, a table of contents, then ``(anchor, title, parts)`` sections."""
    nav = " ".join(f'<a href="#{esc(a)}">{esc(t)}</a>' for a, t, _ in sections)
    body = "\n".join(section(a, t, parts) for a, t, parts in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f'<h1>{esc(title)}</h1>\n<p class="sub">{esc(subtitle)}</p>\n<nav>{nav}</nav>\n'
        f"{body}\n</main>\n</body>\n</html>\n"
    )
