"""Markup to clean text: every recorded Crossref abstract (JATS with and without the `jats:` prefix,
publishers' HTML), the unixsd XML record's namespaced abstract, and broken or hostile markup.
The short inputs below are written by hand to pin one rule each; the recorded ones come first."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from academichub.sources import jats
from academichub.sources.jats import markup_to_text
from academichub.sources.xmlsafe import parse_xml


def recorded_abstracts(shared_data: Path) -> dict[str, str]:
    """DOI -> the abstract exactly as Crossref sent it, from every recorded JSON answer."""
    found: dict[str, str] = {}
    for path in sorted((shared_data / "crossref").glob("*.json")):
        try:
            message = orjson.loads(path.read_bytes())["message"]
        except orjson.JSONDecodeError:  # the 404 bodies
            continue
        for item in message.get("items", [message]):
            if "abstract" in item:
                found[item["DOI"]] = item["abstract"]
    return found


@pytest.fixture(scope="module")
def abstracts(shared_data) -> dict[str, str]:
    return recorded_abstracts(shared_data)


def test_every_recorded_abstract_comes_out_as_one_clean_line(abstracts):
    assert len(abstracts) == 54
    for doi, markup in abstracts.items():
        text = markup_to_text(markup)
        assert text, doi
        assert "<" not in text and ">" not in text, (doi, text)
        assert not re.search(r"&[#a-zA-Z0-9]+;", text), (doi, text)
        assert text == " ".join(text.split()), doi
        assert not text.lower().startswith("abstract"), doi


def test_jats_with_abstract_heading_and_prefixed_tags(abstracts):
    text = markup_to_text(abstracts["10.1038/s41598-020-58350-7"])
    assert text.startswith("Feline foamy virus (FFV) is a contact-dependent retrovirus forming chronic")
    assert "‘gold standard’" in text


def test_heading_indented_on_its_own_line_is_dropped_too(abstracts):
    markup = abstracts["10.1093/femsec/fiab110"]
    assert markup.startswith("<jats:title>Abstract</jats:title>\n               <jats:p>")
    assert markup_to_text(markup).startswith("Deep-sea carbonate mounds can harbor a wide variety")


def test_other_heading_is_kept_and_joined_with_a_colon(abstracts):
    text = markup_to_text(abstracts["10.1126/science.1157784"])
    assert text.startswith("Strategic Reading: Scanning the scientific literature these days is more akin")
    # <jats:bold> and <jats:related-article> keep their text, with the spaces around them
    assert "figures. Renear and Palmer (p. 828 ) review how scientists" in text


def test_jats_italic_inside_a_paragraph(abstracts):
    text = markup_to_text(abstracts["10.4242/balisagevol3.renear01"])
    assert text.startswith("Most definitions of document current in the document processing")


def test_html_abstract_with_italic_titles(abstracts):
    text = markup_to_text(abstracts["10.3366/edinburgh/9781474450751.003.0001"])
    assert "places Guattari’s Schizoanalytic Cartographies at the conceptual centre" in text
    assert "that consists of Schizoanalytic Cartographies, The" in text


def test_hard_wrapped_jats_is_unwrapped(abstracts):
    text = markup_to_text(abstracts["10.1108/09556219310038152"])
    assert text.startswith("As The Last Thing I Build opens, Jerry Fenner somehow finds himself drawn back down")


def test_unixsd_record_abstract_with_declared_namespace(shared_data):
    """cr_abstract-0.xml is Crossref's XML (unixsd) for one work; its abstract is real namespaced JATS."""
    path = shared_data / "crossref" / "cr_abstract-0.xml"
    root = parse_xml(path.read_bytes(), str(path))
    (abstract,) = root.iter("{http://www.ncbi.nlm.nih.gov/JATS1}abstract")
    from lxml import etree

    text = markup_to_text(etree.tostring(abstract, encoding="unicode"))
    assert text.startswith("The Pennsylvania State University–NCAR Mesoscale Model (MM5) and a simplified")
    # two paragraphs, joined by one space
    assert "where deep convection occurs. A 30-day integration of June 1998 over the Midwest" in text
    assert text.endswith("could be reasonably provided by general circulation models.")


# --- one rule each ----------------------------------------------------------------------------------


def test_entities_are_decoded_once():
    assert markup_to_text("<p>A &amp; B &lt; C &#x2013; D&nbsp;E &#233;</p>") == "A & B < C – D E é"
    assert markup_to_text("Light: Science &amp; Applications") == "Light: Science & Applications"
    assert markup_to_text("&amp;lt;") == "&lt;"  # double-escaped stays escaped once


def test_sub_and_superscripts_join_their_word():
    assert markup_to_text("<jats:p>CO<jats:sub>2</jats:sub> and x<jats:sup>3</jats:sup></jats:p>") == "CO2 and x3"


def test_paragraphs_and_sections_are_joined_by_one_space():
    markup = (
        "<jats:sec><jats:title>Background</jats:title><jats:p>Why.</jats:p></jats:sec>"
        "<jats:sec><jats:title>Methods.</jats:title><jats:p>How.</jats:p></jats:sec><p>Then.</p><p>End.</p>"
    )
    assert markup_to_text(markup) == "Background: Why. Methods. How. Then. End."


def test_abstract_heading_in_any_form_is_dropped():
    assert markup_to_text("<title>ABSTRACT</title><p>Text.</p>") == "Text."
    assert markup_to_text("<h2>Abstract:</h2><p>Text.</p>") == "Text."
    assert markup_to_text("<p>Abstract.</p><p>Text.</p>") == "Text."
    assert markup_to_text("<jats:title>Abstract</jats:title>") == ""
    # not a heading: the word opens a sentence
    assert markup_to_text("<p>Abstract interpretation is sound.</p>") == "Abstract interpretation is sound."
    assert markup_to_text("Abstract algebra") == "Abstract algebra"


def test_titles_keep_the_word_abstract():
    assert markup_to_text("Abstract", drop_abstract_heading=False) == "Abstract"
    assert markup_to_text("<title>Abstract</title>", drop_abstract_heading=False) == "Abstract"


def test_italics_glued_to_words_get_their_space_back():
    # a recorded title (10.1093/femsec/fiv167) whose deposit lost the spaces around <i>
    title = (
        "Effect of the IncP-1β plasmid pHB44 on the population dynamics of<i>Burkholderia terrae</i>BS001 in "
        "the<i>Lyophyllum</i>sp. strain Karsten mycosphere under different iron conditions"
    )
    assert markup_to_text(title, drop_abstract_heading=False) == (
        "Effect of the IncP-1β plasmid pHB44 on the population dynamics of Burkholderia terrae BS001 in "
        "the Lyophyllum sp. strain Karsten mycosphere under different iron conditions"
    )
    assert markup_to_text("<i>E. coli</i>'s <i>in vivo</i>-like growth") == "E. coli's in vivo-like growth"


def test_latex_is_kept_as_written():
    assert markup_to_text(r"<p>For the $\sigma$-model, $a<b$ and $c > d$ hold.</p>") == (
        r"For the $\sigma$-model, $a<b$ and $c > d$ hold."
    )
    assert markup_to_text(r"$\alpha<\beta$ in plain text") == r"$\alpha<\beta$ in plain text"


def test_tex_alternative_wins_over_mathml():
    markup = (
        "<jats:p>E = <jats:inline-formula><jats:alternatives><jats:tex-math>$mc^2$</jats:tex-math>"
        "<mml:math><mml:mi>m</mml:mi><mml:msup><mml:mi>c</mml:mi><mml:mn>2</mml:mn></mml:msup></mml:math>"
        "</jats:alternatives></jats:inline-formula> holds.</jats:p>"
    )
    assert markup_to_text(markup) == "E = $mc^2$ holds."
    assert markup_to_text('<p>Let <mml:math alttext="x_1"><mml:mi>x</mml:mi></mml:math> be.</p>') == "Let x_1 be."


def test_plain_text_passes_through_clean_text():
    assert markup_to_text("  two\n  lines  ") == "two lines"
    assert markup_to_text("") == ""


@pytest.mark.parametrize(
    "markup, expected",
    [
        ("<p>unclosed <i>italic", "unclosed italic"),
        ("</p>stray closing</jats:p>", "stray closing"),
        ("<p>a<!-- hidden -->b</p>", "ab"),
        ('<?xml version="1.0" encoding="UTF-8"?><p>declared</p>', "declared"),
        ("<html><body><p>whole page</p></body></html>", "whole page"),
        ("<p>nul\x00 and bell\x07</p>", "nul and bell"),
        ("<script>alert(1)</script><p>kept</p>", "kept"),
        ("<", "<"),
        ("<p></p>", ""),
    ],
)
def test_broken_markup_never_raises(markup, expected):
    assert markup_to_text(markup) == expected


def test_external_entities_are_never_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    markup = f'<!DOCTYPE p [<!ENTITY e SYSTEM "file://{secret}">]><p>before &e; after</p>'
    text = markup_to_text(markup)
    assert "TOP SECRET" not in text
    assert text == "before &e; after"


def test_when_the_parser_fails_tags_are_stripped(monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("lxml refuses this input")

    monkeypatch.setattr(jats.lxml_html, "fragment_fromstring", refuse)
    markup = "<jats:title>Abstract</jats:title><jats:p>CO<jats:sub>2</jats:sub> &amp; more</jats:p><p>Next</p>"
    assert markup_to_text(markup) == "CO2 & more Next"
