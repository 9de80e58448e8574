"""A report written as Markdown (figures as files) and HTML (figures embedded)."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from replearn.utils.atomic import write_text


def _locate(path: Path, root: Path | None) -> Path:
    """A figure's file: ``path`` relative to the report's folder when it is there, else as given."""
    if root is not None and not path.is_absolute() and (Path(root) / path).is_file():
        return Path(root) / path
    return path


@dataclass
class Report:
    """Collect headings, paragraphs, tables and figures; write ``<name>.md`` and ``<name>.html``.

    Figures are PNG files already in (or below) the output folder, named by
    their path or by their path relative to that folder; the HTML embeds them
    so it can be handed in as a single file.
    """

    title: str
    banner: str = ""
    _blocks: list[tuple[str, object]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self._blocks.append(("heading", (level, text)))

    def text(self, text: str) -> None:
        """A paragraph (plain text; ``**bold**`` and ``code`` are left for Markdown, escaped in HTML)."""
        self._blocks.append(("text", text))

    def bullets(self, items: Sequence[str]) -> None:
        self._blocks.append(("bullets", list(items)))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self._blocks.append(("table", (list(headers), [list(r) for r in rows])))

    def figure(self, path: str | os.PathLike, caption: str = "") -> None:
        self._blocks.append(("figure", (Path(path), caption)))

    def code(self, text: str) -> None:
        self._blocks.append(("code", text))

    # -- writers ----------------------------------------------------------
    def to_markdown(self, root: Path) -> str:
        out = [f"# {self.title}", ""]
        if self.banner:
            out += [f"> **{self.banner}**", ""]
        for kind, value in self._blocks:
            if kind == "heading":
                level, text = value
                out += ["#" * level + " " + text, ""]
            elif kind == "text":
                out += [str(value), ""]
            elif kind == "bullets":
                out += [f"- {item}" for item in value] + [""]
            elif kind == "table":
                headers, rows = value
                out.append("| " + " | ".join(headers) + " |")
                out.append("|" + "|".join("---" for _ in headers) + "|")
                out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
                out.append("")
            elif kind == "figure":
                path, caption = value
                rel = os.path.relpath(_locate(path, root), root)
                out += [f"![{caption}]({rel})", "", f"*{caption}*" if caption else "", ""]
            elif kind == "code":
                out += ["```", str(value), "```", ""]
        return "\n".join(out).rstrip() + "\n"

    def to_html(self, root: Path | None = None) -> str:
        esc = html.escape
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{esc(self.title)}</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;text-align:left}"
            "th{background:#eee}img{max-width:100%}.banner{background:#fff3cd;border:1px solid #e0c060;padding:.6em 1em}"
            "figcaption{font-style:italic;color:#444}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}</style>",
            "</head><body>",
            f"<h1>{esc(self.title)}</h1>",
        ]
        if self.banner:
            out.append(f'<p class="banner"><strong>{esc(self.banner)}</strong></p>')
        for kind, value in self._blocks:
            if kind == "heading":
                level, text = value
                out.append(f"<h{level}>{esc(text)}</h{level}>")
            elif kind == "text":
                out.append(f"<p>{esc(str(value))}</p>")
            elif kind == "bullets":
                out.append("<ul>" + "".join(f"<li>{esc(str(i))}</li>" for i in value) + "</ul>")
            elif kind == "table":
                headers, rows = value
                out.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>")
                out += ["<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows]
                out.append("</table>")
            elif kind == "figure":
                path, caption = value
                file = _locate(path, root)
                data = base64.b64encode(file.read_bytes()).decode("ascii")
                out.append(
                    f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{esc(caption)}</figcaption></figure>"
                )
            elif kind == "code":
                out.append(f"<pre>{esc(str(value))}</pre>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def write(self, out_dir: str | os.PathLike, name: str = "report") -> tuple[Path, Path]:
        """Write ``<out_dir>/<name>.md`` and ``<out_dir>/<name>.html`` atomically; return both paths."""
        out_dir = Path(out_dir)
        md = write_text(out_dir / f"{name}.md", self.to_markdown(out_dir))
        page = write_text(out_dir / f"{name}.html", self.to_html(out_dir))
        return md, page
