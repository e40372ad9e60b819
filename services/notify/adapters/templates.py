"""Jinja2 templates: each kind of email has `<kind>.txt.j2` (with its `subject` block) and
`<kind>.html.j2`. HTML is autoescaped; plain text is not."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.notify.domain.messages import MessageKind, format_money

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Templates:
    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self.env.filters["money"] = format_money

    def render(self, kind: MessageKind | str, context: dict[str, Any]) -> Rendered:
        text_tmpl = self.env.get_template(f"{kind}.txt.j2")
        subject = "".join(text_tmpl.blocks["subject"](text_tmpl.new_context(context))).strip()
        subject = " ".join(subject.split())  # one line, whatever the template's layout
        text = _tidy(text_tmpl.render(context))
        html = self.env.get_template(f"{kind}.html.j2").render({**context, "subject": subject})
        return Rendered(subject=subject, text=text, html=html)


def _tidy(text: str) -> str:
    """Collapse the blank lines template logic leaves behind (at most one empty line in a row)."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line and out and not out[-1]:
            continue
        out.append(line)
    return "\n".join(out).strip() + "\n"
