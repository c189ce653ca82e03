"""Author names: TeX to Unicode, list splitting and matching keys, on names from the shared data."""

from __future__ import annotations

import pytest

from academichub.names import name_key, name_norm, split_author_list, tex_to_unicode


@pytest.mark.parametrize(
    ("tex", "unicode"),
    [
        ("Pe\\~na-Mo\\~nino", "Peña-Moñino"),
        ("C. Bal\\'azs", "C. Balázs"),
        ("Przemys{\\l}aw Olbratowski", "Przemysław Olbratowski"),  # from the shared RSS day
        ("Jaros{\\l}aw \\.Zygierewicz", "Jarosław Żygierewicz"),
        ('Adam Lundstr\\"om', "Adam Lundström"),
        ("Fran\\c{c}ois", "François"),
        ("Dvo\\v{r}\\'ak", "Dvořák"),
        ("Erd\\H{o}s", "Erdős"),
        ("\\'{\\i}ndice", "índice"),
        ("{\\'E}mile", "Émile"),
        ("S\\o ren", "Søren"),
        ("plain name", "plain name"),
    ],
)
def test_tex_to_unicode(tex, unicode):
    assert tex_to_unicode(tex) == unicode


def test_name_key_survives_initials_accents_tex_and_order():
    variants = ["C. Balázs", "Csaba Balazs", "Bal\\'azs, C.", "Balázs, Csaba", "C Balazs"]
    assert {name_key(v) for v in variants} == {"balazs c"}
    assert name_norm("Bal\\'azs, Csaba") == name_norm("Csaba Balázs") == "csaba balazs"
    assert name_key("Martin Luther King Jr.") == "king m"


def test_split_author_list_keeps_commas_inside_affiliations():
    text = (
        "Tianliang Yan (University of Birmingham, School of Physics and Astronomy, Birmingham, United Kingdom), "
        "Yubao Liu (Center for Gravitational Experiment, Wuhan, China), Leonid Prokhorov"
    )
    authors = split_author_list(text)
    assert [a.name for a in authors] == ["Tianliang Yan", "Yubao Liu", "Leonid Prokhorov"]
    assert authors[0].affiliation == "University of Birmingham, School of Physics and Astronomy, Birmingham, United Kingdom"
    assert authors[2].affiliation is None


def test_split_author_list_handles_and():
    assert [a.name for a in split_author_list("A. Smith, B. Jones and C. Brown")] == ["A. Smith", "B. Jones", "C. Brown"]
    assert [a.name for a in split_author_list("A. Smith, and B. Jones")] == ["A. Smith", "B. Jones"]


def test_a_hostile_long_name_is_not_handed_to_the_tex_parser():
    """A megabyte of macros in an author field would keep pylatexenc busy for minutes: past
    MAX_TEX_NAME characters only the accent rules apply and the other macros stay as they are."""
    from academichub.names import MAX_TEX_NAME

    name = "\\'e" + "\\relax x" * (MAX_TEX_NAME // 8)
    converted = tex_to_unicode(name)
    assert converted.startswith("é\\relax x")
    assert converted.count("\\relax") == MAX_TEX_NAME // 8
