"""The venue catalog: the shipped file loads and is sound, a user's file extends and overrides it,
and a broken user file is reported by name and entry."""

from __future__ import annotations

import json
import tomllib

import pytest

from academichub.errors import ConfigError
from academichub.sources.publisher_feed import FeedMapping
from academichub.venues import find_venue, issn_check_digit_ok, load_venues, shipped_catalog

REQUIRED = [
    "Nature", "Science", "Cell", "PNAS", "NEJM", "The Lancet", "JAMA", "BMJ", "Nature Methods",
    "Nature Machine Intelligence", "Nature Physics", "Nature Chemistry", "Nature Biotechnology",
    "Nature Genetics", "Nature Neuroscience", "Nature Medicine", "Nature Communications", "Science Advances",
    "Physical Review Letters", "Physical Review X", "JACS", "Angewandte Chemie", "Neuron", "Immunity",
    "Cell Reports", "Molecular Cell", "Cancer Cell", "Nature Climate Change", "Nature Energy",
    "Nature Materials", "Nature Nanotechnology", "Nature Human Behaviour", "eLife", "PLOS Biology", "JMLR",
    "IEEE TPAMI", "Annals of Mathematics", "Lancet Oncology", "Circulation", "Gastroenterology",
]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    return load_venues(tmp_path_factory.mktemp("no-user-file"))


def test_shipped_catalog_loads_with_at_least_forty_sound_entries(shipped):
    assert len(shipped) >= 40
    issns = [issn for venue in shipped.values() for issn in venue.issns]
    assert issns and all(issn_check_digit_ok(issn) for issn in issns)
    assert len(issns) == len(set(issns))
    for venue in shipped.values():
        assert venue.name and venue.short and venue.fields, venue.key
        assert venue.issns, f"{venue.key} has no ISSN"
        assert all(url.startswith("https://") for url in venue.rss), venue.key


@pytest.mark.parametrize("name", REQUIRED)
def test_required_journals_are_in_the_catalog(shipped, name):
    assert find_venue(name, shipped) is not None, name


def test_nature_matches_the_recorded_openalex_source(shipped, shared_data):
    recorded = json.loads((shared_data / "openalex" / "S137773608.json").read_text())
    nature = shipped["nature"]
    assert nature.openalex_id == recorded["id"].rsplit("/", 1)[-1]
    assert sorted(nature.issns) == sorted(recorded["issn"])
    assert nature.name == recorded["display_name"]
    assert nature.rss == ("https://www.nature.com/nature.rss",)


def test_every_name_finds_its_own_venue(shipped):
    # A short label or alias shared by two venues would make one of them unfindable by it.
    for venue in shipped.values():
        for name in (venue.key, venue.name, venue.short, *venue.aliases, *venue.issns, venue.abbreviation):
            if name:
                assert find_venue(name, shipped) is venue, (name, venue.key)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Proc. Natl. Acad. Sci. U.S.A.", "pnas"),
        ("Proc Natl Acad Sci U S A", "pnas"),
        ("N Engl J Med", "nejm"),
        ("New England Journal of Medicine", "nejm"),
        ("THE LANCET", "lancet"),
        ("lancet", "lancet"),
        ("0028-0836", "nature"),
        ("14764687", "nature"),
        ("1474-547x", "lancet"),
        ("Nature Ecology and Evolution", "nature-ecology-evolution"),
        ("nature-methods", "nature-methods"),
        ("Angew. Chem. Int. Ed. Engl.", "angewandte"),
    ],
)
def test_find_venue_ignores_case_and_punctuation(shipped, text, key):
    assert find_venue(text, shipped).key == key


def test_find_venue_without_a_match(shipped):
    assert find_venue("Journal of Imaginary Results", shipped) is None
    assert find_venue("", shipped) is None
    assert find_venue("Nature Methodz", shipped) is None


def test_find_venue_loads_the_catalog_itself():
    assert find_venue("Science").key == "science"


def test_user_file_adds_and_overrides_by_key(tmp_path):
    (tmp_path / "venues.toml").write_text(
        """
[nature]
short = "Nat."
rss = ["https://www.nature.com/nature.rss", "https://example.org/nature-aop.rss"]

[my-lab-journal]
name = "Journal of the Lab"
short = "JLab"
fields = ["biology"]
issn_electronic = "1234-5679"
""",
        encoding="utf-8",
    )
    venues = load_venues(tmp_path)
    assert venues["nature"].short == "Nat."  # overridden
    assert venues["nature"].name == "Nature" and venues["nature"].issn_print == "0028-0836"  # the rest kept
    assert venues["nature"].rss[1] == "https://example.org/nature-aop.rss"
    assert venues["my-lab-journal"].issns == ["1234-5679"]
    assert find_venue("JLab", venues).key == "my-lab-journal"
    assert len(venues) == len(load_venues(tmp_path / "elsewhere")) + 1


def test_user_file_in_the_configured_data_dir_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("ACADEMICHUB_DATA_DIR", str(tmp_path))
    (tmp_path / "venues.toml").write_text('[science]\nshort = "Sci."\n', encoding="utf-8")
    assert load_venues()["science"].short == "Sci."


def test_a_venue_may_carry_a_feed_mapping(tmp_path):
    (tmp_path / "venues.toml").write_text(
        '[cell.feed]\nabstract_field = "dc_description"\nabstract_drop = ["^Graphical abstract"]\n', encoding="utf-8"
    )
    mapping = load_venues(tmp_path)["cell"].feed_mapping
    assert mapping == FeedMapping(abstract_field="dc_description", abstract_drop=("^Graphical abstract",))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[nature\nname = "x"', "not valid TOML"),
        ('title = "My venues"', "'title' is not an entry"),
        ('[new]\nname = "New"\nshort = "N"\n', r"entry 'new': missing required field\(s\) fields"),
        ('[nature]\nissn_print = "0028-0837"', r"entry 'nature': issn_print '0028-0837' is not a valid ISSN"),
        ('[nature]\nissn_print = "00280836"', "is not a valid ISSN"),
        ('[nature]\nissn_eletronic = "1476-4687"', r"entry 'nature': unknown field\(s\) issn_eletronic"),
        ('[copy]\nname = "Copy"\nshort = "C"\nfields = ["x"]\nissn_print = "0028-0836"', "ISSN 0028-0836 is already entry 'nature'"),
        ('[Bad_Key]\nname = "B"\nshort = "B"\nfields = ["x"]', "entry 'Bad_Key': keys are lower-case"),
        ('[nature]\nfields = "biology"', "fields must be a list"),
        ('[nature]\nopenalex = "W123"', "not an OpenAlex source id"),
        ('[nature]\nrss = ["ftp://example.org/feed"]', "is not an http"),
        ('[nature.feed]\nabstract_feild = "x"', r"feed: unknown field\(s\) abstract_feild"),
        ('[nature.feed]\nabstract_drop = ["(unclosed"]', "abstract_drop"),
    ],
    ids=[
        "toml-syntax", "not-a-table", "missing-fields", "check-digit", "no-hyphen", "unknown-field",
        "duplicate-issn", "bad-key", "fields-not-list", "openalex-id", "rss-scheme", "feed-unknown", "feed-regex",
    ],
)
def test_a_bad_user_file_is_a_clear_error_naming_it(tmp_path, content, message):
    user_file = tmp_path / "venues.toml"
    user_file.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_venues(tmp_path)
    assert str(caught.value).startswith(f"{user_file}:")


def test_check_digit():
    assert issn_check_digit_ok("0028-0836") and issn_check_digit_ok("1474-547X")
    assert not issn_check_digit_ok("0028-0835") and not issn_check_digit_ok("1474-5470")
    assert not issn_check_digit_ok("1474-547x") and not issn_check_digit_ok("28-0836")


def test_shipped_file_is_plain_toml_with_table_entries():
    with shipped_catalog().open("rb") as handle:
        data = tomllib.load(handle)
    assert all(isinstance(entry, dict) for entry in data.values())
