"""Markup helpers shared by the report pages: escaping, number format, tables, embedded PNGs.

Pages carry their CSS inline and their images as ``data:image/png;base64`` URIs, and the page's
provenance record as JSON in ``<script type="application/json" id="provenance">``; nothing is
fetched when a page is opened. A figure may add a link to its vector copy (a file beside the
page), which the page does not need to render.
"""

import base64
import html
import json
import numbers
import re

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
#provenance td { overflow-wrap: anywhere; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.warn { color: #9c2a00; } .ok { color: #1f6f2a; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""


def esc(value):
    """HTML-escaped text of ``value``."""
    return html.escape(str(value))


def fmt(value, digits=6):
    """Number with ``digits`` significant digits; None -> "-"; other values as text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Real):
        return f"{value:.{digits}g}"
    return str(value)


def table(headers, rows, numeric=()):
    """<table> with escaped cells; columns whose index is in ``numeric`` are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{esc(c)}</td>' if k in numeric else f"<td>{esc(c)}</td>" for k, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def caption_html(rst):
    """Caption markup from its reStructuredText: lines joined, ``**strong**`` kept, rest escaped."""
    text = esc(" ".join(rst.split()))
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)


def png_figure(png_bytes, stem, caption, vector_href=None):
    """<figure> with the PNG embedded as a base64 data URI and the caption (from its .rst), ending
    in a link to ``vector_href`` (URL of the vector copy) when given."""
    data = base64.b64encode(png_bytes).decode("ascii")
    link = f' <a href="{esc(vector_href)}">Vector copy (PDF)</a>' if vector_href else ""
    return (
        f'<figure id="{esc(stem)}"><img alt="{esc(stem)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption_html(caption)}{link}</figcaption></figure>"
    )


def page(title, body, provenance):
    """Complete HTML document: inline CSS, ``body`` markup, provenance as embedded JSON."""
    record = json.dumps(provenance, indent=1, sort_keys=True, default=str).replace("</", "<\\/")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>\n{body}\n"
        f'<script type="application/json" id="provenance">{record}</script>\n</body></html>\n'
    )
