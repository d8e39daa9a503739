"""CommonMark (with tables) -> docutils nodes, for the summaries ``hw3 report`` writes.

The docs extra is Sphinx alone, so instead of a Markdown parser extension this walks the
tree of markdown-it-py (installed with rich, a core dependency). It covers what the
summaries use: headings (as rubrics, so they never disturb the page's own sections),
paragraphs, emphasis, code, links, images, lists, block quotes, code blocks and tables. HTML
comments are dropped; other raw HTML passes through to HTML output only.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from docutils import nodes
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

ImageResolver = Callable[[str], str]
_ALIGN = re.compile(r"text-align:\s*(left|right|center)")


def markdown_to_nodes(text: str, image_uri: ImageResolver) -> list[nodes.Node]:
    """Block nodes for ``text``; ``image_uri`` maps each image's ``src`` to a Sphinx URI
    (and may raise ValueError for a missing file)."""
    tree = SyntaxTreeNode(MarkdownIt("commonmark").enable("table").parse(text))
    return _Converter(image_uri).blocks(tree.children)


class _Converter:
    def __init__(self, image_uri: ImageResolver) -> None:
        self.image_uri = image_uri

    def blocks(self, children: list[SyntaxTreeNode]) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        for child in children:
            out.extend(self.block(child))
        return out

    def block(self, node: SyntaxTreeNode) -> list[nodes.Node]:
        kind = node.type
        if kind == "paragraph":
            inline = self.inline(node.children)
            if len(inline) == 1 and isinstance(inline[0], nodes.image):
                return inline  # an image on its own line is a block image
            para = nodes.paragraph()
            para.extend(inline)
            return [para]
        if kind == "heading":
            rubric = nodes.rubric(classes=[f"md-{node.tag}"])
            rubric.extend(self.inline(node.children))
            return [rubric]
        if kind in ("bullet_list", "ordered_list"):
            lst = nodes.bullet_list() if kind == "bullet_list" else nodes.enumerated_list()
            for item in node.children:
                li = nodes.list_item()
                li.extend(self.blocks(item.children))
                lst += li
            return [lst]
        if kind == "blockquote":
            quote = nodes.block_quote()
            quote.extend(self.blocks(node.children))
            return [quote]
        if kind in ("fence", "code_block"):
            code = node.content.rstrip("\n")
            return [nodes.literal_block(code, code, language=_language(node.info))]
        if kind == "table":
            return [self.table(node)]
        if kind == "html_block":
            html = node.content.strip()
            if re.fullmatch(r"<!--.*?-->", html, re.S):
                return []
            return [nodes.raw(html, html, format="html")]
        if kind == "hr":
            return []
        text = node.content or ""
        return [nodes.paragraph(text=text)] if text.strip() else []

    def inline(self, children: list[SyntaxTreeNode]) -> list[nodes.Node]:
        out: list[nodes.Node] = []
        for child in children:
            if child.type == "inline":
                out.extend(self.inline(child.children))
            elif child.type == "text":
                out.append(nodes.Text(child.content))
            elif child.type == "softbreak":
                out.append(nodes.Text(" "))
            elif child.type == "hardbreak":
                out.append(nodes.raw("", "<br/>", format="html"))
            elif child.type in ("strong", "em"):
                wrapper = nodes.strong() if child.type == "strong" else nodes.emphasis()
                wrapper.extend(self.inline(child.children))
                out.append(wrapper)
            elif child.type == "code_inline":
                out.append(nodes.literal(child.content, child.content))
            elif child.type == "link":
                ref = nodes.reference(refuri=str(child.attrs.get("href", "")))
                ref.extend(self.inline(child.children))
                out.append(ref)
            elif child.type == "image":
                alt = "".join(c.content for c in child.children if c.type == "text")
                out.append(nodes.image(uri=self.image_uri(str(child.attrs.get("src", ""))),
                                       alt=alt))
            elif child.type == "html_inline":
                if not child.content.startswith("<!--"):
                    out.append(nodes.raw(child.content, child.content, format="html"))
            else:
                out.extend(self.inline(child.children) or [nodes.Text(child.content)])
        return out

    def table(self, node: SyntaxTreeNode) -> nodes.table:
        rows = [(section.type, tr) for section in node.children for tr in section.children]
        width = max(len(tr.children) for _, tr in rows)
        table = nodes.table(classes=["md-table"])
        group = nodes.tgroup(cols=width)
        table += group
        for i in range(width):
            texts = [tr.children[i] for _, tr in rows if i < len(tr.children)]
            group += nodes.colspec(colwidth=max(len(_plain(c)) for c in texts) or 1)
        head, body = nodes.thead(), nodes.tbody()
        for section, tr in rows:
            row = nodes.row()
            for cell in tr.children:
                align = _ALIGN.search(str(cell.attrs.get("style", "")))
                entry = nodes.entry(classes=[f"ac-{align.group(1)}"] if align else [])
                para = nodes.paragraph()
                para.extend(self.inline(cell.children))
                entry += para
                row += entry
            for _ in range(width - len(tr.children)):
                row += nodes.entry()
            (head if section == "thead" else body).append(row)
        if len(head):
            group += head
        group += body
        return table


def _language(info: str) -> str:
    """A fence's language if Pygments knows it, else ``text`` (never Sphinx's default guess,
    Python, which highlights keywords and quotes inside plain output)."""
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    name = info.strip().split(" ")[0]
    try:
        get_lexer_by_name(name)
    except ClassNotFound:
        return "text"
    return name


def _plain(node: SyntaxTreeNode) -> str:
    """The text of a node and its children (for column widths)."""
    return node.content if not node.children else "".join(_plain(c) for c in node.children)
