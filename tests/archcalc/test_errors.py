"""archcalc.errors: user mistakes are small classes that locate themselves."""

from __future__ import annotations

import pytest

import archcalc
from archcalc.errors import (
    ArchcalcError,
    Loc,
    SpecError,
    UnknownModelError,
    UsageError,
    VerifyUnavailable,
)


def test_loc_prints_as_file_line_col() -> None:
    assert str(Loc("nets/a.arch", 3, 12, "conv3-64 s=0")) == "nets/a.arch:3:12"


def test_caret_sits_under_the_column() -> None:
    loc = Loc("a.arch", 1, 10, "conv3-64 s=0")
    #         "  conv3-64 s=0"
    #         "           ^"     two-space indent + 9 spaces, under 's'
    assert loc.caret() == "  conv3-64 s=0\n           ^"


def test_caret_at_first_column_and_past_the_end() -> None:
    assert Loc("a", 1, 1, "relu").caret() == "  relu\n  ^"
    assert Loc("a", 1, 5, "relu").caret() == "  relu\n      ^"  # end of line: after 'u'


def test_caret_keeps_tabs_so_it_lines_up() -> None:
    assert Loc("a", 1, 3, "\t\tbn x").caret() == "  \t\tbn x\n  \t\t^"


def test_caret_is_empty_without_source_text() -> None:
    assert Loc("a", 4, 1).caret() == ""


def test_spec_error_prefixes_the_location() -> None:
    err = SpecError("unknown layer 'foo'", Loc("m.arch", 2, 3, "  foo"))
    assert str(err) == "m.arch:2:3: unknown layer 'foo'"
    assert err.message == "unknown layer 'foo'"
    assert err.render() == "m.arch:2:3: unknown layer 'foo'\n    foo\n    ^"


def test_spec_error_without_location_is_just_the_message() -> None:
    err = SpecError("model 'x' has no parameter 'y'")
    assert str(err) == err.render() == "model 'x' has no parameter 'y'"
    err = SpecError("no text", Loc("m.arch", 9, 1))  # location, but no line to show
    assert err.render() == "m.arch:9:1: no text"


def test_unknown_model_error_names_the_model_and_the_choices() -> None:
    err = UnknownModelError("vgg99", ["vgg11", "vgg16"])
    assert err.name == "vgg99" and err.known == ["vgg11", "vgg16"]
    assert str(err) == ("unknown model 'vgg99': not a spec file and not in the zoo; "
                        "did you mean 'vgg16'? (known: vgg11, vgg16)")


def test_load_raises_unknown_model_error_listing_the_zoo() -> None:
    with pytest.raises(UnknownModelError) as info:
        archcalc.load("no-such-net")
    assert "vgg19" in info.value.known and "resnet56" in info.value.known
    assert info.value.known == sorted(info.value.known)


def test_load_of_a_missing_spec_file_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"spec file 'missing\.arch' does not exist"):
        archcalc.load("missing.arch")


@pytest.mark.parametrize("cls", [SpecError, UnknownModelError, UsageError, VerifyUnavailable])
def test_every_user_mistake_is_an_archcalc_error(cls: type[Exception]) -> None:
    assert issubclass(cls, ArchcalcError)
    assert not issubclass(ArchcalcError, (ValueError, TypeError))  # bugs stay distinct


def test_parse_errors_render_file_line_col_and_caret() -> None:
    text = "input 8x8x3\nconv3-8\n  maxpool s=0\n"
    with pytest.raises(SpecError) as info:
        archcalc.parse(text, "net.arch")
    #                                  "  maxpool s=0": the value '0' is column 13
    assert str(info.value) == "net.arch:3:13: stride must be at least 1, not '0'"
    assert info.value.render().splitlines() == [
        "net.arch:3:13: stride must be at least 1, not '0'",
        "    maxpool s=0",
        "              ^",
    ]
