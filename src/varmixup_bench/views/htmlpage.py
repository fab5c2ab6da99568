"""A self-contained HTML page (no network, sortable tables, plots embedded as base64 PNGs): the frame every HTML
view of the records shares (the headline, the wide leaderboard, the report)."""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Sequence


def _code(text: str) -> str:
    """HTML-escaped text whose `quoted` parts are <code>, never literal backticks."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _images(plots: Sequence[Path]) -> str:
    figs = []
    for p in plots:
        p = Path(p)
        if p.is_file():
            data = base64.b64encode(p.read_bytes()).decode("ascii")
            figs.append(f'<figure><img alt="{html.escape(p.name)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(p.name)}</figcaption></figure>")
    return ("<h2>Plots</h2>" + "".join(figs)) if figs else ""


SORTER = """<script>
document.querySelectorAll('table.sortable').forEach(table => {
  table.querySelectorAll('th').forEach((th, i) => th.addEventListener('click', () => {
    const body = table.tBodies[0]; const rows = Array.from(body.rows);
    const key = r => { const c = r.cells[i]; if (c.dataset.v !== undefined) return parseFloat(c.dataset.v);
      const v = parseFloat(c.innerText); return isNaN(v) ? c.innerText : v; };
    const dir = th.dataset.dir = th.dataset.dir === 'desc' ? 'asc' : 'desc';
    rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (dir === 'asc' ? 1 : -1));
    rows.forEach(r => body.appendChild(r));
  }));
  table.dataset.sortable = 'ready';
});
</script>"""

STYLE = ("body{font-family:system-ui,sans-serif;max-width:72em;margin:1em auto;padding:0 1em;line-height:1.4}"
         "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
         "th{cursor:pointer;background:#eee}th:hover{background:#ddd}small{color:#555}a.flag{color:#b35900;"
         "text-decoration:none;font-weight:bold}ol.notes{font-size:.9em;list-style:none;padding-left:1em}"
         "span.v{white-space:nowrap}img{max-width:100%}figure{margin:1em 0}"
         "p.legend{font-size:.9em;color:#333}")


def page(title: str, body: str, legend: str, plots: Sequence[Path] = ()) -> str:
    """A self-contained HTML document: no network, sortable tables, plots embedded as base64 PNGs."""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{body}<p class=\"legend\">{_code(legend)} Click a column header to "
            f"sort.</p>{_images(plots)}{SORTER}</body></html>\n")
