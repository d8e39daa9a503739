"""The Markdown of hw3 summaries becomes docutils nodes: tables, images, quotes, code."""

from __future__ import annotations

import pytest
from docutils import nodes
from markdown_nodes import markdown_to_nodes

SUMMARY = """<!-- hw3 report demo/1: generated from results.json -->

> **Stand-in data (generated).** These numbers come from synthetic data.

# demo

Loss fell to `0.25` after *2* epochs; see [the paper](https://example.org/p).

| method | loss |
|:--|--:|
| adam | 0.25 |
| sgd | 0.5 |

1. first
2. second

```
raw text
```

- ![loss](plots/loss.png)
"""


def convert(text: str) -> list[nodes.Node]:
    return markdown_to_nodes(text, lambda src: f"/results/demo/{src}")


def test_summary_converts_to_the_expected_nodes() -> None:
    out = convert(SUMMARY)
    kinds = [type(n).__name__ for n in out]
    assert kinds == ["block_quote", "rubric", "paragraph", "table", "enumerated_list",
                     "literal_block", "bullet_list"]  # the HTML comment is dropped
    quote, rubric, para, table, _, code, images = out
    assert quote.astext().startswith("Stand-in data (generated).")
    assert next(iter(quote.findall(nodes.strong))).astext() == "Stand-in data (generated)."
    assert rubric.astext() == "demo"
    assert next(iter(para.findall(nodes.literal))).astext() == "0.25"
    assert next(iter(para.findall(nodes.reference)))["refuri"] == "https://example.org/p"
    cells = [[e.astext() for e in row.findall(nodes.entry)] for row in table.findall(nodes.row)]
    assert cells == [["method", "loss"], ["adam", "0.25"], ["sgd", "0.5"]]
    assert "ac-right" in list(table.findall(nodes.entry))[-1]["classes"]
    assert code.astext() == "raw text"
    image = next(iter(images.findall(nodes.image)))
    assert image["uri"] == "/results/demo/plots/loss.png" and image["alt"] == "loss"


def test_an_image_alone_in_a_paragraph_is_a_block_image() -> None:
    out = convert("![curve](plots/curve.png)\n")
    assert len(out) == 1 and isinstance(out[0], nodes.image)


def test_a_resolver_error_propagates() -> None:
    def missing(src: str) -> str:
        raise ValueError(f"no {src}")

    with pytest.raises(ValueError, match=r"no plots/x\.png"):
        markdown_to_nodes("![x](plots/x.png)", missing)
