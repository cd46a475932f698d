"""Markup for the static HTML report: a page, sections, figures, tables. No JavaScript, no network:
one HTML file whose figures and CSVs sit next to it, so the folder can be zipped or served as is."""

from __future__ import annotations

import html
import itertools

import pandas as pd

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #222;
       max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 8px;
     border-bottom: 2px solid #e5e5e5; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
.meta { color: #666; font-size: 13px; margin-bottom: 18px; }
nav { background: #f6f7f9; border: 1px solid #e3e5e8; border-radius: 6px; padding: 8px 14px; font-size: 14px; }
nav a { margin-right: 14px; color: #2a5db0; text-decoration: none; white-space: nowrap; }
.note { color: #555; font-size: 13.5px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #eef3fb;
         color: #2a5db0; border: 1px solid #cddcf3; }
.badge.calibrated { background: #eaf7ee; color: #23783b; border-color: #bfe3ca; }
.badge.transferred { background: #fff6e5; color: #8a5a00; border-color: #f0d49a; }
.badge.unfitted { background: #fdecea; color: #a12a1d; border-color: #f3c2bc; }
figure { margin: 12px 0 20px; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; margin-top: 4px; }
.table-wrap { overflow-x: auto; margin: 8px 0 16px; }
table.data { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
table.data th, table.data td { border-bottom: 1px solid #e6e6e6; padding: 3px 9px; text-align: left; }
table.data td { white-space: nowrap; }
table.data th { background: #f3f4f6; position: sticky; top: 0; }
table.data tr:hover td { background: #fafbff; }
details > summary { cursor: pointer; color: #2a5db0; margin: 6px 0; }
ul.findings li { margin: 3px 0; }
code { background: #f3f4f6; padding: 1px 4px; border-radius: 3px; font-size: 13px; }
"""
_TABLE_IDS = itertools.count(1)  # ids for the per-table alignment styles


def esc(text) -> str:
    return html.escape(str(text))


def page(title: str, meta: str, nav: list[tuple[str, str]], body: list[str]) -> str:
    links = " ".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label in nav)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        f"<h1>{esc(title)}</h1>", f'<div class="meta">{meta}</div>', f"<nav>{links}</nav>",
        *body, "</body>", "</html>", ""])


def section(anchor: str, heading: str, *parts: str) -> str:
    content = "\n".join(p for p in parts if p)
    return f'<section id="{esc(anchor)}">\n<h2>{esc(heading)}</h2>\n{content}\n</section>'


def para(text: str, cls: str = "") -> str:
    """A paragraph of already-escaped (or trusted) inline HTML."""
    return f'<p class="{cls}">{text}</p>' if cls else f"<p>{text}</p>"


def figure(src: str, caption: str, alt: str = "") -> str:
    return (f'<figure><img src="{esc(src)}" alt="{esc(alt or caption)}" loading="lazy">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def number(value: float) -> str:
    """Floats for people: 17,194.7 / 24.5 / 1.25 / 0.083; whole numbers without decimals."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def table(frame: pd.DataFrame, caption: str = "", collapsed: bool = False) -> str:
    """A pandas table (values escaped by pandas), optionally folded into a <details> element.
    Text columns are left-aligned, numeric ones right-aligned (a per-table style on their index)."""
    table_id = f"t{next(_TABLE_IDS)}"
    body = frame.to_html(index=False, border=0, classes="data", na_rep="–", escape=True, float_format=number,
                         table_id=table_id)
    numeric = [i + 1 for i, dtype in enumerate(frame.dtypes) if pd.api.types.is_numeric_dtype(dtype)]
    align = ", ".join(f"#{table_id} td:nth-child({i}), #{table_id} th:nth-child({i})" for i in numeric)
    style = f"<style>{align} {{ text-align: right; }}</style>" if numeric else ""
    wrapped = f'{style}<div class="table-wrap">{body}</div>'
    if collapsed:
        return f"<details><summary>{esc(caption or 'table')} ({len(frame)} rows)</summary>{wrapped}</details>"
    return (f"<h3>{esc(caption)}</h3>" if caption else "") + wrapped


def bullet_list(items: list[str], cls: str = "findings") -> str:
    """Items are trusted inline HTML (escape values before building them)."""
    return f'<ul class="{cls}">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def link(href: str, text: str) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def terms_badge(profile_source: str) -> str:
    """A prediction's term-level source ('calibrated; paging terms at defaults', simulator/provenance.py):
    the part after the profile's kind, flagged, with the whole text as its tooltip."""
    kind, _, terms = profile_source.partition("; ")
    return f'<span class="badge unfitted" title="{esc(profile_source)}">{esc(terms or kind)}</span>'


def source_badge(source: str) -> str:
    kind = next((k for k in ("calibrated", "transferred") if source.startswith(k)), "datasheet")
    cls = {"calibrated": "badge calibrated", "transferred": "badge transferred"}.get(kind, "badge")
    return f'<span class="{cls}">{esc(source)}</span>'
