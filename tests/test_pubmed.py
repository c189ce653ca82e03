"""PubMed E-utilities: every recorded EFetch response (biopython's Tests/Entrez files, see SOURCES.md)
parsed with exact expectations, the recorded PMC article set, PubMed's date shapes, and the client
against a local server: ESearch (hand-written from the E-utilities documentation: no ESearch answer
was recorded), paging through the History server over the recorded EFetch files, NCBI's identity
parameters, error documents, 429 with Retry-After and the rate limit."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from localserver import LocalServer, Reply

from academichub.errors import FeedError, ParseError, SourceError
from academichub.model import AuthorData, RelationData
from academichub.sources.http import HTTPStatusError, PoliteClient
from academichub.sources.pubmed import (
    MAX_EFETCH_BATCH,
    PubMedClient,
    SearchResult,
    normalize_doi,
    normalize_orcid,
    parse_efetch,
    parse_esearch,
    parse_pmc,
    pubmed_min_interval,
    redact_api_key,
    search_term,
)

PMC_FILE = "efetch_pmc.xml"
# file -> the PMIDs it holds, in order
PMIDS = {
    "pubmed1.xml": ["12091962", "9997"],
    "pubmed2.xml": ["11748933", "11700088"],
    "pubmed4.xml": ["27797938"],
    "pubmed5.xml": ["28775130"],
    "pubmed6.xml": ["30108519"],
    "pubmed7.xml": ["29963580"],
}


@pytest.fixture(scope="module")
def pubmed_dir(shared_data) -> Path:
    return shared_data / "pubmed"


def parse(pubmed_dir: Path, name: str):
    path = pubmed_dir / name
    return parse_efetch(path.read_bytes(), str(path))


def record(pubmed_dir: Path, pmid: str):
    name = next(n for n, pmids in PMIDS.items() if pmid in pmids)
    return next(p for p in parse(pubmed_dir, name).papers if p.source_id == pmid)


# --- every recorded file -------------------------------------------------------------------------


def test_the_table_covers_every_recorded_file(pubmed_dir):
    assert {p.name for p in pubmed_dir.glob("*.xml")} == set(PMIDS) | {PMC_FILE}


@pytest.mark.parametrize("name", sorted(PMIDS))
def test_recorded_file_records_and_invariants(pubmed_dir, name):
    batch = parse(pubmed_dir, name)
    assert [p.source_id for p in batch.papers] == PMIDS[name]
    for paper in batch.papers:
        assert paper.source == "pubmed"
        assert paper.pmid == paper.source_id == paper.raw["pmid"] == paper.raw["article_ids"]["pubmed"]
        assert paper.url_abs == f"https://pubmed.ncbi.nlm.nih.gov/{paper.pmid}/"
        for text in (paper.title, paper.abstract, *(a.name for a in paper.authors)):
            assert text == text.strip() and "\n" not in text and "  " not in text
            assert not re.search(r"</?(i|sub|sup|u|b|mml:\w+)>", text), text
        assert paper.title
        assert paper.doi is None or (paper.doi == paper.doi.lower() and paper.doi.startswith("10."))
        assert paper.pmcid is None or re.fullmatch(r"PMC\d+", paper.pmcid)
        assert paper.raw["iso_abbreviation"] and paper.venue
        assert paper.published is not None and paper.announced is not None
        assert paper.raw["language"] == ["eng"]
        assert all(scheme == "mesh" for scheme, _ in paper.subjects)
        assert (paper.relations, paper.server) == ([], None)  # no preprint among them
        json.dumps(paper.raw)  # raw goes into a JSON column


def test_season_pubdate_review_without_abstract(pubmed_dir):
    paper = record(pubmed_dir, "12091962")
    assert paper.title == "The treatment of AIDS behind the walls of correctional facilities."
    assert paper.abstract == ""
    assert paper.authors == [AuthorData("J Michael Olivero")]
    assert (paper.doi, paper.pmcid) == (None, None)
    assert (paper.venue, paper.raw["iso_abbreviation"]) == ("Social justice (San Francisco, Calif.)", "Soc Justice")
    assert paper.issns == ["1043-1578"]
    # PubDate "1990 Spring": the first month of spring, kept as season precision
    assert paper.published == date(1990, 3, 1)
    assert (paper.raw["published_from"], paper.raw["published_precision"]) == ("PubDate", "season")
    assert paper.announced == date(1990, 4, 1)  # the Entrez date
    assert paper.work_type == "review"  # "Review" says more than "Journal Article"
    assert paper.raw["publication_types"] == ["Journal Article", "Review"]
    assert len(paper.subjects) == 19
    assert paper.subjects[0] == ("mesh", "AIDS Serodiagnosis")
    assert paper.subjects[-1] == ("mesh", "United States")
    assert paper.raw["mesh"][1] == {"ui": "D000163", "name": "Acquired Immunodeficiency Syndrome", "major": True,
                                    "qualifiers": []}
    assert paper.keywords == ["Health Care and Public Health", "Legal Approach"]


def test_doi_from_article_ids_and_month_name_pubdate(pubmed_dir):
    paper = record(pubmed_dir, "9997")
    assert paper.title == (
        "Magnetic studies of Chromatium flavocytochrome C552. A mechanism for heme-flavin interaction."
    )
    assert paper.authors == [AuthorData("T C Strekas")]
    assert paper.doi == "10.1016/0005-2795(76)90109-4"
    assert paper.abstract.startswith("Electron paramagnetic resonance and magnetic susceptibility studies of")
    assert paper.raw["iso_abbreviation"] == "Biochim Biophys Acta"
    assert paper.published == date(1976, 9, 28)  # <Month>Sep</Month>
    assert len(paper.subjects) == 13
    assert paper.raw["mesh"][1]["qualifiers"] == [{"ui": "Q000201", "name": "enzymology", "major": True}]
    assert paper.work_type == "journal article"
    assert paper.keywords == []


def test_copyright_is_not_abstract_and_affiliation_entity_decoded(pubmed_dir):
    paper = record(pubmed_dir, "11748933")
    assert paper.title.startswith("Is cryopreservation a homogeneous process? Ultrastructure and motility of")
    assert len(paper.authors) == 8
    assert paper.authors[0] == AuthorData(
        "A R Taddei", "Dipartimento di Scienze Ambientali, Università degli Studi della Tuscia, 01100 Viterbo, Italy."
    )
    assert paper.authors[-1] == AuthorData("M Mazzini")
    assert paper.doi == "10.1006/cryo.2001.2328"
    assert paper.abstract.startswith("This study subdivides the cryopreservation procedure for Diplodus puntazzo")
    assert paper.abstract.endswith("to better understand the process of sperm damage.")
    assert "(P < 0.001)" in paper.abstract
    assert "Elsevier" not in paper.abstract
    assert paper.raw["copyright"] == "Copyright 2001 Elsevier Science."
    assert paper.raw["iso_abbreviation"] == "Cryobiology"
    assert (paper.published, paper.raw["published_precision"]) == (date(2001, 6, 1), "month")
    assert len(paper.subjects) == 11
    assert paper.work_type == "journal article"  # "Research Support, Non-U.S. Gov't" is funding, not a kind


def test_not_yet_indexed_record_has_no_mesh(pubmed_dir):
    paper = record(pubmed_dir, "11700088")
    assert paper.title == "Proton MRI of (13)C distribution by J and chemical shift editing."
    assert [a.name for a in paper.authors] == [
        "C Casieri", "C Testa", "G Carpinelli", "R Canese", "F Podo", "F De Luca"
    ]
    assert paper.doi == "10.1006/jmre.2001.2429"
    assert paper.abstract.startswith("The sensitivity of (13)C NMR imaging can be considerably favored")
    assert paper.raw["copyright"] == "Copyright 2001 Academic Press."
    assert paper.raw["iso_abbreviation"] == "J Magn Reson"
    assert paper.raw["medline_status"] == "PubMed-not-MEDLINE"
    assert paper.subjects == []
    assert paper.published == date(2001, 11, 1)
    assert paper.announced == date(2001, 11, 9)


def test_structured_abstract_markup_and_electronic_date(pubmed_dir):
    paper = record(pubmed_dir, "27797938")
    assert paper.title == (
        "Leucocyte telomere length, genetic variants at the TERT gene region and risk of pancreatic cancer."
    )
    assert "<i>TERT</i>" not in paper.raw["article_title"] and "TERT" in paper.raw["article_title"]
    assert paper.abstract.startswith("OBJECTIVE: Telomere shortening occurs as an early event in pancreatic")
    for label in (" DESIGN: We measured", " RESULTS: Shorter prediagnostic", " CONCLUSIONS: Prediagnostic"):
        assert label in paper.abstract
    assert "p=0.048" not in paper.abstract and "ptrend=0.048" in paper.abstract and "r2<0.25" in paper.abstract
    assert "BMJ" not in paper.abstract
    assert [s["label"] for s in paper.raw["abstract_sections"]] == ["OBJECTIVE", "DESIGN", "RESULTS", "CONCLUSIONS"]
    assert len(paper.authors) == 22
    assert paper.authors[0] == AuthorData(
        "Ying Bao",
        "Channing Division of Network Medicine, Department of Medicine, Brigham and Women's Hospital, and "
        "Harvard Medical School, Boston, Massachusetts, USA.",
    )
    assert paper.authors[2].affiliation == (
        "Department of Epidemiology, Harvard T.H. Chan School of Public Health, Boston, Massachusetts, USA.; "
        "Department of Medical Oncology, Dana-Farber Cancer Institute, Boston, Massachusetts, USA."
    )
    assert paper.authors[-1].name == "Brian M Wolpin"
    assert (paper.doi, paper.pmcid) == ("10.1136/gutjnl-2016-312510", "PMC5442267")
    assert paper.raw["iso_abbreviation"] == "Gut" and paper.venue == "Gut"
    assert paper.issns == ["1468-3288", "0017-5749"]  # the journal's ISSN, then ISSN-L
    # ArticleDate (electronic, 2016-10-21) comes before the June 2017 issue
    assert (paper.published, paper.raw["published_from"]) == (date(2016, 10, 21), "ArticleDate")
    assert paper.raw["pub_date"] == {"Year": "2017", "Month": "06"}
    assert paper.announced == date(2016, 11, 1)
    assert len(paper.subjects) == 21
    assert paper.subjects[0] == ("mesh", "Adenocarcinoma")
    assert paper.keywords == ["PANCREATIC CANCER"]
    # the 48 "Cites" are references, not linked records
    assert paper.raw["linked_records"] == [{"type": "CommentIn", "pmid": "27920200", "source": "Gut. 2017 Jun;66(6):1"}]
    assert paper.work_type == "journal article"  # "Observational Study" is a design, not a kind of work
    assert len(paper.raw["publication_types"]) == 5


def test_structured_abstract_with_categories_and_keywords(pubmed_dir):
    paper = record(pubmed_dir, "28775130")
    assert paper.title == (
        "Occupational pesticide exposure and subclinical hypothyroidism among male pesticide applicators."
    )
    assert paper.abstract.startswith("OBJECTIVES: Animal studies suggest that exposure to pesticides may alter thyroid")
    assert " METHODS: Self-reported lifetime pesticide use" in paper.abstract
    assert "(TSH >4.5 mIU/L)" in paper.abstract and "ORQ3=4.15" in paper.abstract
    assert paper.raw["abstract_sections"][0]["nlm_category"] == "OBJECTIVE"
    assert paper.raw["copyright"].startswith("© Article author(s)")
    assert len(paper.authors) == 12
    assert paper.authors[0].name == "Catherine C Lerro"
    assert paper.authors[1].name == "Laura E Beane Freeman"
    assert (paper.doi, paper.pmcid) == ("10.1136/oemed-2017-104431", "PMC5771820")
    assert paper.raw["iso_abbreviation"] == "Occup Environ Med"
    assert paper.issns == ["1470-7926", "1351-0711"]
    assert paper.subjects == []  # In-Data-Review: not indexed yet
    assert paper.keywords == [
        "agriculture", "hypothyroidism", "pesticides", "thyroid disease", "thyroid stimulating hormone"
    ]
    assert (paper.published, paper.announced) == (date(2017, 8, 3), date(2017, 8, 5))


def test_mathml_and_quotes_inside_markup(pubmed_dir):
    paper = record(pubmed_dir, "30108519")
    assert paper.title == (
        'A "Blood Relationship" Between the Overlooked Minimum Lactate Equivalent and Maximal Lactate Steady '
        "State in Trained Runners. Back to the Old Days?"
    )
    assert paper.abstract.startswith("Maximal Lactate Steady State (MLSS) and Lactate Threshold (LT) are")
    assert "maximal oxygen uptake ( V.O2max ) 67.6 ± 4.1 ml·kg-1·min-1]" in paper.abstract
    assert "mml" not in paper.abstract and "(LEmin)" in paper.abstract
    assert [a.name for a in paper.authors] == ["Ibai Garcia-Tabar", "Esteban M Gorostiaga"]
    assert (paper.doi, paper.pmcid) == ("10.3389/fphys.2018.01034", "PMC6079548")
    assert paper.raw["iso_abbreviation"] == "Front Physiol"
    assert paper.published == date(2018, 7, 31)
    assert paper.raw["pub_date"] == {"Year": "2018"}
    assert len(paper.keywords) == 8 and paper.keywords[0] == "Owles' point"


def test_orcid_collective_author_and_reference_ids_ignored(pubmed_dir):
    paper = record(pubmed_dir, "29963580")
    assert paper.title == (
        "Development of a pulmonary imaging biomarker pipeline for phenotyping of chronic lung disease."
    )
    assert paper.abstract.startswith("We designed and generated pulmonary imaging biomarker pipelines")
    assert "(1) inhaled 3He/129Xe MRI ventilation" in paper.abstract  # MathML prescripts before their base
    assert "(3) ultrashort echo-time 1H MRI proton density" in paper.abstract
    assert len(paper.authors) == 9
    assert paper.authors[0].name == "Fumin Guo"
    assert paper.authors[1].orcid == "0000-0002-4590-7461"  # https://orcid.org/... upstream
    assert paper.authors[6].name == "Aaron Fenster" and paper.authors[6].orcid == "0000-0003-3525-2788"
    assert sum(a.orcid is not None for a in paper.authors) == 2
    assert paper.authors[-1] == AuthorData("Canadian Respiratory Research Network")
    # 0 MeSH; the ReferenceList's own ArticleIdLists do not leak into the record's ids
    assert paper.subjects == []
    assert paper.raw["article_ids"] == {
        "pubmed": "29963580", "doi": "10.1117/1.JMI.5.2.026002", "pii": "17360RR", "pmc": "PMC6022861"
    }
    assert (paper.doi, paper.pmcid) == ("10.1117/1.jmi.5.2.026002", "PMC6022861")
    assert paper.raw["iso_abbreviation"] == "J Med Imaging (Bellingham)"
    assert (paper.published, paper.announced) == (date(2018, 6, 28), date(2018, 7, 3))


# --- edits of recorded records: dates, fallbacks, odd values --------------------------------------

_RECORD_9997_PUBDATE = b"<PubDate><Year>1976</Year><Month>Sep</Month><Day>28</Day></PubDate>"


@pytest.mark.parametrize(
    "pub_date, published, precision, source",
    [
        (b"<MedlineDate>2004 Jan-Feb</MedlineDate>", date(2004, 1, 1), "month", "PubDate"),
        (b"<MedlineDate>1998 Dec-1999 Jan</MedlineDate>", date(1998, 12, 1), "month", "PubDate"),
        (b"<MedlineDate>2005 Aug 20-26</MedlineDate>", date(2005, 8, 20), "day", "PubDate"),
        (b"<MedlineDate>2000 Spring-Summer</MedlineDate>", date(2000, 3, 1), "season", "PubDate"),
        (b"<MedlineDate>1975-1976</MedlineDate>", date(1975, 1, 1), "year", "PubDate"),
        (b"<Year>1976</Year><Month>09</Month>", date(1976, 9, 1), "month", "PubDate"),
        (b"<Year>1976</Year><Season>Winter</Season>", date(1976, 1, 1), "season", "PubDate"),
        (b"<Year>1976</Year><Month>Feb</Month><Day>30</Day>", date(1976, 2, 29), "day", "PubDate"),
        # a year alone gives way to the PubMed date of that year (1976-09-28 in the History)
        (b"<Year>1976</Year>", date(1976, 9, 28), "day", "PubMedPubDate"),
        (b"", date(1976, 9, 28), "day", "PubMedPubDate"),
    ],
)
def test_pubdate_shapes(pubmed_dir, pub_date, published, precision, source):
    content = (pubmed_dir / "pubmed1.xml").read_bytes()
    assert content.count(_RECORD_9997_PUBDATE) == 1
    edited = content.replace(_RECORD_9997_PUBDATE, b"<PubDate>" + pub_date + b"</PubDate>")
    paper = parse_efetch(edited, "edited.xml").papers[1]
    assert (paper.published, paper.raw["published_precision"], paper.raw["published_from"]) == (
        published, precision, source
    )


def test_doi_falls_back_to_elocation_id(pubmed_dir):
    content = (pubmed_dir / "pubmed6.xml").read_bytes()
    edited = content.replace(b'<ArticleId IdType="doi">10.3389/fphys.2018.01034</ArticleId>', b"")
    assert edited != content
    paper = parse_efetch(edited, "edited.xml").papers[0]
    assert "doi" not in paper.raw["article_ids"]
    assert paper.doi == "10.3389/fphys.2018.01034"  # from <ELocationID EIdType="doi">


def test_ids_of_cited_works_never_become_the_records_own(pubmed_dir):
    # Without its own ArticleIdList, pubmed7's only ArticleIds are those of 49 of its references.
    content = (pubmed_dir / "pubmed7.xml").read_bytes()
    own = re.search(rb"<ArticleIdList>\s*<ArticleId IdType=\"pubmed\">29963580</ArticleId>.*?</ArticleIdList>",
                    content, re.S)
    edited = content.replace(own.group(0), b"")
    assert edited.count(b"<ArticleId ") == 49
    paper = parse_efetch(edited, "edited.xml").papers[0]
    assert paper.raw["article_ids"] == {}
    assert (paper.pmid, paper.pmcid) == ("29963580", None)
    assert paper.doi == "10.1117/1.jmi.5.2.026002"  # from ELocationID


# An UpdateIn link as PubMed writes it (CommentsCorrections RefType="UpdateIn" with RefSource and
# PMID, per the PubMed DTD); the linked record is invented.
UPDATE_IN = (b'<CommentsCorrections RefType="UpdateIn"><RefSource>Invented J. 2019;1:1</RefSource>'
             b'<PMID Version="1">99000002</PMID></CommentsCorrections>')


def test_a_preprint_names_its_journal_version(pubmed_dir):
    content = (pubmed_dir / "pubmed6.xml").read_bytes()
    edited = content.replace(b"<CommentsCorrectionsList>", b"<CommentsCorrectionsList>" + UPDATE_IN).replace(
        b'<PublicationType UI="D016428">Journal Article</PublicationType>',
        b'<PublicationType UI="D000076942">Preprint</PublicationType>',
    ).replace(b"<ISOAbbreviation>Front Physiol</ISOAbbreviation>", b"<ISOAbbreviation>bioRxiv</ISOAbbreviation>")
    paper = parse_efetch(edited, "edited.xml").papers[0]
    assert (paper.work_type, paper.server) == ("preprint", "biorxiv")
    assert paper.relations == [RelationData("preprint-of", "pmid", "99000002")]
    assert paper.raw["linked_records"] == [{"type": "UpdateIn", "pmid": "99000002", "source": "Invented J. 2019;1:1"}]

    not_preprint = edited.replace(b'<PublicationType UI="D000076942">Preprint</PublicationType>',
                                  b'<PublicationType UI="D016428">Journal Article</PublicationType>')
    paper = parse_efetch(not_preprint, "edited.xml").papers[0]
    assert (paper.work_type, paper.server, paper.relations) == ("journal article", None, [])


def test_update_in_of_a_journal_article_is_no_preprint_link(pubmed_dir):
    content = (pubmed_dir / "pubmed4.xml").read_bytes()
    edited = content.replace(b"<CommentsCorrectionsList>", b"<CommentsCorrectionsList>" + UPDATE_IN)
    paper = parse_efetch(edited, "edited.xml").papers[0]
    assert (paper.relations, paper.server) == ([], None)
    assert [link["type"] for link in paper.raw["linked_records"]] == ["UpdateIn", "CommentIn"]


def test_unlabelled_section_keeps_no_label(pubmed_dir):
    content = (pubmed_dir / "pubmed6.xml").read_bytes()
    edited = content.replace(b"<AbstractText>Maximal", b'<AbstractText Label="UNLABELLED">Maximal')
    assert edited != content
    paper = parse_efetch(edited, "edited.xml").papers[0]
    assert paper.abstract.startswith("Maximal Lactate Steady State (MLSS)")
    assert paper.raw["abstract_sections"][0]["label"] == "UNLABELLED"


def test_orcid_without_hyphens_and_invalid_orcid(pubmed_dir):
    content = (pubmed_dir / "pubmed7.xml").read_bytes()
    edited = content.replace(b"https://orcid.org/0000-0002-4590-7461", b"0000000245907461").replace(
        b"https://orcid.org/0000-0003-3525-2788", b"https://orcid.org/0000-0003-3525-2789"
    )
    authors = parse_efetch(edited, "edited.xml").papers[0].authors
    assert authors[1].orcid == "0000-0002-4590-7461"
    assert authors[6].orcid is None  # check digit wrong: not an ORCID iD


def test_invalid_author_entries_and_translated_titles(pubmed_dir):
    content = (pubmed_dir / "pubmed2.xml").read_bytes()
    edited = content.replace(
        b'<Author ValidYN="Y"><LastName>Barbato</LastName>', b'<Author ValidYN="N"><LastName>Barbato</LastName>'
    ).replace(
        b"<ArticleTitle>Proton MRI of (13)C distribution by J and chemical shift editing.</ArticleTitle>",
        b"<ArticleTitle>[Proton MRI of (13)C distribution by J and chemical shift editing].</ArticleTitle>",
    )
    first, second = parse_efetch(edited, "edited.xml").papers
    assert [a.name for a in first.authors][:2] == ["A R Taddei", "L Abelli"]
    assert first.raw["authors"][1]["valid"] is False and len(first.raw["authors"]) == 8
    assert second.title == "Proton MRI of (13)C distribution by J and chemical shift editing"
    assert second.raw["article_title"].startswith("[Proton MRI")


def test_external_dtd_is_never_fetched(pubmed_dir, module_server):
    module_server.routes.clear()
    module_server.requests.clear()
    module_server.route("/pubmed_250101.dtd", body=b'<!ENTITY % broken "')
    content = (pubmed_dir / "pubmed1.xml").read_bytes()
    dtd = b"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd"
    assert dtd in content
    batch = parse_efetch(content.replace(dtd, module_server.url("/pubmed_250101.dtd").encode()), "local-dtd.xml")
    assert [p.pmid for p in batch.papers] == PMIDS["pubmed1.xml"]
    assert module_server.requests == []


def test_external_entities_are_not_expanded(pubmed_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    content = (pubmed_dir / "pubmed1.xml").read_bytes()
    doctype = content.split(b"\n")[1]
    edited = content.replace(
        doctype, f'<!DOCTYPE PubmedArticleSet [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'.encode()
    ).replace(b"<ArticleTitle>The treatment", b"<ArticleTitle>&xxe;The treatment")
    paper = parse_efetch(edited, "xxe.xml").papers[0]
    assert "TOP-SECRET" not in paper.title
    assert paper.title.startswith("The treatment of AIDS")


def test_wrong_documents_are_named(pubmed_dir, shared_data):
    pmc = pubmed_dir / PMC_FILE
    with pytest.raises(ParseError, match="parse_pmc") as caught:
        parse_efetch(pmc.read_bytes(), str(pmc))
    assert caught.value.location == str(pmc) and caught.value.line == 3
    with pytest.raises(ParseError, match="parse_efetch"):
        parse_pmc((pubmed_dir / "pubmed4.xml").read_bytes(), "pubmed4.xml")
    rss = shared_data / "arxiv" / "rss" / "empty.xml"
    with pytest.raises(ParseError, match="not a PubmedArticleSet"):
        parse_efetch(rss.read_bytes(), str(rss))
    with pytest.raises(ParseError, match=r"truncated\.xml:\d+: malformed XML"):
        parse_efetch((pubmed_dir / "pubmed1.xml").read_bytes()[:3000], "truncated.xml")


def test_record_without_pmid_names_file_and_line(pubmed_dir):
    content = (pubmed_dir / "pubmed2.xml").read_bytes().replace(b'<PMID Version="1">11700088</PMID>', b"")
    with pytest.raises(ParseError, match="without a valid PMID") as caught:
        parse_efetch(content, "no-pmid.xml")
    assert (caught.value.location, caught.value.line) == ("no-pmid.xml", 4)  # the whole set is on line 4


# Hand-written: no PubmedBookArticle was recorded. The structure follows the PubMed DTD
# (pubmed_250101.dtd: BookDocument with Book, ArticleTitle, AuthorList Type=, PublicationType,
# Abstract, ContributionDate; PubmedBookData with History and ArticleIdList); every value is invented.
BOOK_ARTICLE = b"""<PubmedBookArticle>
<BookDocument>
  <PMID Version="1">99000001</PMID>
  <ArticleIdList><ArticleId IdType="bookaccession">NBK000001</ArticleId></ArticleIdList>
  <Book>
    <Publisher>
      <PublisherName>Invented University Press</PublisherName><PublisherLocation>Nowhere (XX)</PublisherLocation>
    </Publisher>
    <BookTitle book="invented">Invented <i>Reviews</i></BookTitle>
    <PubDate><Year>1993</Year></PubDate>
    <AuthorList Type="editors">
      <Author ValidYN="Y"><LastName>Editor</LastName><ForeName>Ed</ForeName></Author>
    </AuthorList>
    <Isbn>0000000000</Isbn>
  </Book>
  <ArticleTitle book="invented" part="ch1">An invented chapter</ArticleTitle>
  <Language>eng</Language>
  <AuthorList Type="authors">
    <Author ValidYN="Y"><LastName>Writer</LastName><ForeName>Wanda</ForeName><Suffix>Jr</Suffix>
      <AffiliationInfo><Affiliation>Invented Institute</Affiliation></AffiliationInfo></Author>
  </AuthorList>
  <PublicationType UI="D016454">Review</PublicationType>
  <Abstract><AbstractText Label="SUMMARY">What the chapter says.</AbstractText></Abstract>
  <ContributionDate><Year>2001</Year><Month>02</Month><Day>03</Day></ContributionDate>
</BookDocument>
<PubmedBookData>
  <History>
    <PubMedPubDate PubStatus="pubmed"><Year>2010</Year><Month>3</Month><Day>20</Day></PubMedPubDate>
    <PubMedPubDate PubStatus="entrez"><Year>2010</Year><Month>3</Month><Day>19</Day></PubMedPubDate>
  </History>
  <PublicationStatus>ppublish</PublicationStatus>
  <ArticleIdList>
    <ArticleId IdType="pubmed">99000001</ArticleId><ArticleId IdType="doi">10.0000/INVENTED.1</ArticleId>
  </ArticleIdList>
</PubmedBookData>
</PubmedBookArticle>"""


def test_book_articles_parse_in_document_order(pubmed_dir):
    content = (pubmed_dir / "pubmed1.xml").read_bytes()
    first_end = content.index(b"</PubmedArticle>") + len(b"</PubmedArticle>")
    edited = content[:first_end] + BOOK_ARTICLE + content[first_end:]
    papers = parse_efetch(edited, "with-book.xml").papers
    assert [p.source_id for p in papers] == ["12091962", "99000001", "9997"]
    book = papers[1]
    assert (book.source, book.pmid, book.doi) == ("pubmed", "99000001", "10.0000/invented.1")
    assert book.title == "An invented chapter"
    assert (book.venue, book.publisher) == ("Invented Reviews", "Invented University Press")
    assert book.authors == [AuthorData("Wanda Writer Jr", "Invented Institute")]  # editors are not authors
    assert book.abstract == "SUMMARY: What the chapter says."
    assert book.work_type == "review"
    assert (book.published, book.raw["published_from"]) == (date(2001, 2, 3), "ContributionDate")
    assert book.announced == date(2010, 3, 19)
    assert book.raw["article_ids"]["bookaccession"] == "NBK000001" and book.raw["isbn"] == ["0000000000"]
    json.dumps(book.raw)

    bare = BOOK_ARTICLE.replace(b"<PublicationType UI=\"D016454\">Review</PublicationType>", b"").replace(
        b"<ContributionDate><Year>2001</Year><Month>02</Month><Day>03</Day></ContributionDate>", b""
    )
    bare = re.sub(rb'<AuthorList Type="authors">.*?</AuthorList>', b"", bare, flags=re.S)
    book = parse_efetch(b"<PubmedArticleSet>" + bare + b"</PubmedArticleSet>", "book.xml").papers[0]
    assert book.authors == []  # the Book's list names only editors
    assert book.work_type == "book chapter"
    assert (book.published, book.raw["published_precision"]) == (date(1993, 1, 1), "year")  # no 1993 PubMed date


# --- the PMC article set --------------------------------------------------------------------------


def test_pmc_article_set_front_matter(pubmed_dir):
    path = pubmed_dir / PMC_FILE
    batch = parse_pmc(path.read_bytes(), str(path))
    assert len(batch.papers) == 1
    paper = batch.papers[0]
    assert (paper.source, paper.source_id, paper.pmcid, paper.pmid) == ("pmc", "PMC8435807", "PMC8435807", "34527728")
    assert paper.doi == "10.1183/23120541.50193-2021"
    assert paper.title.startswith("“Lung diffusing capacity for nitric oxide measured by two commercial devices")
    assert paper.title.endswith("Holger Dressel. ERJ Open Res 2021; 7: 00193-2021.")  # <italic> flattened
    assert (paper.abstract, paper.authors) == ("", [])  # an author correction: neither
    assert (paper.venue, paper.raw["iso_abbreviation"]) == ("ERJ Open Research", "ERJ Open Res")
    assert paper.issns == ["2312-0541"] and paper.publisher == "European Respiratory Society"
    assert paper.license == "https://creativecommons.org/licenses/by-nc/4.0/"
    assert paper.work_type == "correction"
    assert paper.published == date(2021, 9, 13)  # epub, before the July 2021 collection
    assert paper.raw["collection"] == "2021-07-01"
    assert paper.raw["related_articles"] == [
        {"type": "corrected-article", "ext_link_type": "doi", "href": "10.1183/23120541.00193-2021"}
    ]
    assert paper.url_abs == "https://pmc.ncbi.nlm.nih.gov/articles/PMC8435807/"
    json.dumps(paper.raw)


# Written into the recorded article-meta: the recorded correction has no authors and no abstract.
# The markup is JATS 1.3 as the JATS Tag Library documents it (contrib-group, contrib-id, xref to
# aff, collab, structured abstract with sec/title); the people are invented.
PMC_CONTRIBS = b"""<contrib-group>
  <contrib contrib-type="author"><contrib-id contrib-id-type="orcid">https://orcid.org/0000-0002-1825-0097</contrib-id>
    <name><surname>Carberry</surname><given-names>Josiah</given-names></name>
    <xref ref-type="aff" rid="aff1">1</xref></contrib>
  <contrib contrib-type="author"><collab>Invented Study Group</collab></contrib>
  <contrib contrib-type="editor"><name><surname>Editor</surname><given-names>Ed</given-names></name></contrib>
  <aff id="aff1"><label>1</label>Invented University, Providence, RI, USA</aff>
</contrib-group>
<abstract><sec><title>Background</title><p>Why we <italic>looked</italic>.</p></sec>
  <sec><title>Results</title><p>What we found.</p></sec></abstract>
"""


def test_pmc_authors_and_structured_abstract(pubmed_dir):
    content = (pubmed_dir / PMC_FILE).read_bytes()
    edited = content.replace(b"<title-group>", PMC_CONTRIBS + b"<title-group>")
    paper = parse_pmc(edited, "edited-pmc.xml").papers[0]
    assert paper.authors == [
        AuthorData("Josiah Carberry", "Invented University, Providence, RI, USA", "0000-0002-1825-0097"),
        AuthorData("Invented Study Group"),
    ]
    assert paper.abstract == "Background: Why we looked. Results: What we found."


# --- small pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("https://orcid.org/0000-0002-4590-7461", "0000-0002-4590-7461"),
        ("http://orcid.org/0000000245907461/", "0000-0002-4590-7461"),
        ("0000-0002-1694-233x", "0000-0002-1694-233X"),  # ORCID's own example of an X check digit
        ("0000-0002-4590-7462", None),
        ("not an orcid", None),
        (None, None),
    ],
)
def test_normalize_orcid(text, expected):
    assert normalize_orcid(text) == expected


def test_normalize_doi():
    assert normalize_doi("https://doi.org/10.1117/1.JMI.5.2.026002") == "10.1117/1.jmi.5.2.026002"
    assert normalize_doi(" doi:10.1006/CRYO.2001.2328 ") == "10.1006/cryo.2001.2328"
    assert normalize_doi("") is None


def test_rate_limits():
    assert pubmed_min_interval(None) == pytest.approx(1 / 3)
    assert pubmed_min_interval("key") == pytest.approx(1 / 10)
    with PoliteClient(user_agent="t", min_interval=0.1) as http:
        with pytest.raises(ValueError, match="below NCBI's limit"):
            PubMedClient(http)
        PubMedClient(http, api_key="key")  # 10 a second are allowed with a key
    with PoliteClient(user_agent="t", min_interval=0.05) as http:
        with pytest.raises(ValueError, match="with an API key"):
            PubMedClient(http, api_key="key")
    with PoliteClient(user_agent="t", min_interval=pubmed_min_interval(None)) as http:
        PubMedClient(http)


def test_search_term():
    assert search_term("telomere", None) == "telomere"
    assert search_term("telomere OR tert", "Gut") == '(telomere OR tert) AND "Gut"[ta]'
    assert search_term("", "J Med Imaging (Bellingham)") == '"J Med Imaging (Bellingham)"[ta]'
    with pytest.raises(ValueError):
        search_term("", None)
    with pytest.raises(ValueError):
        search_term("x", 'Gut"[ta] OR "Cell')


def test_redact_api_key():
    assert redact_api_key("https://h/esearch.fcgi?db=pubmed&api_key=abc123&tool=t") == (
        "https://h/esearch.fcgi?db=pubmed&api_key=***&tool=t"
    )
    assert redact_api_key("https://h/e?api_key=abc") == "https://h/e?api_key=***"


# --- ESearch answers ------------------------------------------------------------------------------

# Hand-written from the E-utilities documentation (ESearch with retmode=json: the eSearchResult DTD's
# elements in lower case under "esearchresult", numbers as strings): no ESearch answer was recorded.
# WebEnv and ids are invented.
WEBENV = "MCID_0000000000000000invented"


def esearch_answer(count: int, query_key: str, ids: list[str] | None = None, retstart: int = 0) -> bytes:
    return json.dumps({
        "header": {"type": "esearch", "version": "0.3"},
        "esearchresult": {
            "count": str(count), "retmax": str(len(ids or [])), "retstart": str(retstart),
            "querykey": query_key, "webenv": WEBENV, "idlist": ids or [],
            "translationset": [], "querytranslation": "invented[All Fields]",
        },
    }).encode()


# NCBI's documented error shapes: a search it cannot run, an invalid key, too many requests.
ESEARCH_ERROR = (
    b'{"header":{"type":"esearch","version":"0.3"},'
    b'"esearchresult":{"ERROR":"Empty term and query_key - nothing todo"}}'
)
INVALID_KEY = b'{"error":"API key invalid","api-key":"bad-key","type":"invalid","status":"unknown"}'
RATE_LIMITED = b'{"error":"API rate limit exceeded","api-key":"127.0.0.1","count":"4","limit":"3"}'
# EFetch's answer when the History server no longer has the query (an eFetchResult with ERROR).
EFETCH_ERROR = b"""<?xml version="1.0" encoding="UTF-8" ?>
<eFetchResult>
\t<ERROR>Cannot retrieve query from History</ERROR>
</eFetchResult>"""


def test_parse_esearch():
    result = parse_esearch(esearch_answer(7, "3", ["29963580", "30108519"]), "esearch.json")
    assert result == SearchResult(7, ["29963580", "30108519"], WEBENV, "3", "invented[All Fields]")
    with pytest.raises(FeedError, match="Empty term and query_key - nothing todo") as caught:
        parse_esearch(ESEARCH_ERROR, "https://eutils.example/esearch.fcgi?term=")
    assert caught.value.url == "https://eutils.example/esearch.fcgi?term="
    with pytest.raises(FeedError, match="API key invalid"):
        parse_esearch(INVALID_KEY, "esearch.json")
    with pytest.raises(ParseError, match=r"esearch\.json:1: ESearch answer is not JSON"):
        parse_esearch(b"<html>Bad Gateway</html>", "esearch.json")
    with pytest.raises(ParseError, match="without a valid count"):
        parse_esearch(b'{"esearchresult": {"idlist": []}}', "esearch.json")


# --- the client against a local server ------------------------------------------------------------

EUTILS = "/entrez/eutils"
KEY = "test-api-key-0123"
EMAIL = "radar@example.org"
TOOL = "academichub-tests"

# History pages: (query_key, retstart, retmax) -> recorded EFetch file. The pairing is ours; the
# files are NCBI's. Query 1 finds the four records of pubmed1+2, query 2 the four single records,
# query 3 three records in pages of two.
SEARCHES = {"telomere": (4, "1"), "lung": (4, "2"), "three": (3, "3"), "everything": (10_001, "4")}
PAGES = {
    ("1", 0, 2): "pubmed1.xml", ("1", 2, 2): "pubmed2.xml",
    ("2", 0, 1): "pubmed4.xml", ("2", 1, 1): "pubmed5.xml", ("2", 2, 1): "pubmed6.xml", ("2", 3, 1): "pubmed7.xml",
    ("3", 0, 2): "pubmed2.xml", ("3", 2, 1): "pubmed6.xml",
}


class FakeClock:
    """A monotonic clock that moves only when the client sleeps on it: waits are recorded, not spent."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def eutils(module_server, pubmed_dir):
    """esearch.fcgi answers SEARCHES by term; efetch.fcgi serves PAGES by history position and the
    recorded files by their exact id lists. `overrides[endpoint]` replaces the answers for a test."""
    server = module_server
    server.routes.clear()
    server.requests.clear()
    by_ids = {",".join(pmids): name for name, pmids in PMIDS.items()}
    server.overrides = {}

    def esearch(raw_path: str, headers: dict) -> Reply:
        if "esearch" in server.overrides:
            return server.overrides["esearch"].pop(0)
        params = dict(parse_qsl(urlsplit(raw_path).query))
        term = params["term"].split(")")[0].strip("(")
        if term not in SEARCHES:
            return Reply(200, esearch_answer(0, "9"))
        count, query_key = SEARCHES[term]
        return Reply(200, esearch_answer(count, query_key), {"Content-Type": "application/json; charset=UTF-8"})

    def efetch(raw_path: str, headers: dict) -> Reply:
        if "efetch" in server.overrides:
            return server.overrides["efetch"].pop(0)
        params = dict(parse_qsl(urlsplit(raw_path).query))
        if "id" in params:
            name = by_ids.get(params["id"])
        elif params.get("WebEnv") == WEBENV:
            name = PAGES.get((params["query_key"], int(params["retstart"]), int(params["retmax"])))
        else:
            return Reply(200, EFETCH_ERROR, {"Content-Type": "text/xml; charset=UTF-8"})
        if name is None:
            return Reply(404, b"no recorded response for " + raw_path.encode())
        return Reply(200, (pubmed_dir / name).read_bytes(), {"Content-Type": "text/xml; charset=UTF-8"})

    server.route(f"{EUTILS}/esearch.fcgi", handler=esearch)
    server.route(f"{EUTILS}/efetch.fcgi", handler=efetch)
    return server


@pytest.fixture
def clock():
    return FakeClock()


def make_client(server, clock, *, api_key=KEY, email=EMAIL, retries=0) -> PubMedClient:
    http = PoliteClient(user_agent="AcademicHub-tests", min_interval=pubmed_min_interval(api_key), retries=retries,
                        sleep=clock.sleep, clock=clock)
    return PubMedClient(http, base_url=server.url(EUTILS), api_key=api_key, email=email, tool=TOOL)


@pytest.fixture
def client(eutils, clock):
    client = make_client(eutils, clock)
    yield client
    client.http.close()


def sent(server) -> list[tuple[str, dict[str, str]]]:
    """(endpoint, parameters) of every request the server saw."""
    return [(urlsplit(path).path.rsplit("/", 1)[-1], dict(parse_qsl(urlsplit(path).query))) for path, _ in
            server.requests]


def test_esearch_sends_ncbis_parameters(eutils, client):
    result = client.esearch("telomere", journal="Gut", mindate=date(2016, 10, 1), maxdate=date(2016, 11, 30),
                            retmax=20)
    assert result == SearchResult(4, [], WEBENV, "1", "invented[All Fields]")
    assert sent(eutils) == [("esearch.fcgi", {
        "db": "pubmed", "term": '(telomere) AND "Gut"[ta]', "retmode": "json", "retmax": "20", "usehistory": "y",
        "datetype": "edat", "mindate": "2016/10/01", "maxdate": "2016/11/30",
        "tool": TOOL, "email": EMAIL, "api_key": KEY,
    })]


def test_esearch_open_date_range_and_no_history(eutils, client):
    client.esearch("lung", mindate=date(2018, 7, 3), datetype="pdat", usehistory=False)
    params = sent(eutils)[0][1]
    assert (params["datetype"], params["mindate"], params["maxdate"]) == ("pdat", "2018/07/03", "3000/12/31")
    assert "usehistory" not in params


def test_iter_search_pages_through_the_history_server(eutils, client, pubmed_dir):
    batches = list(client.iter_search("telomere", journal="Soc Justice", batch_size=2))
    assert [b.start_index for b in batches] == [0, 2]
    assert [b.total_results for b in batches] == [4, 4]
    assert [p.pmid for b in batches for p in b.papers] == PMIDS["pubmed1.xml"] + PMIDS["pubmed2.xml"]
    assert batches[1].papers == parse(pubmed_dir, "pubmed2.xml").papers
    requests = sent(eutils)
    assert [(endpoint, params.get("retmax"), params.get("retstart")) for endpoint, params in requests] == [
        ("esearch.fcgi", "0", None), ("efetch.fcgi", "2", "0"), ("efetch.fcgi", "2", "2"),
    ]
    assert requests[0][1]["term"] == '(telomere) AND "Soc Justice"[ta]'
    for endpoint, params in requests[1:]:
        assert params["db"] == "pubmed" and params["retmode"] == "xml"
        assert (params["WebEnv"], params["query_key"]) == (WEBENV, "1")
    for endpoint, params in requests:
        assert (params["tool"], params["email"], params["api_key"]) == (TOOL, EMAIL, KEY)


def test_iter_search_asks_only_for_what_is_left(eutils, client):
    batches = list(client.iter_search("three", batch_size=2))
    assert [len(b.papers) for b in batches] == [2, 1]
    assert [p["retmax"] for e, p in sent(eutils) if e == "efetch.fcgi"] == ["2", "1"]


def test_iter_search_with_a_limit(eutils, client):
    batches = list(client.iter_search("lung", batch_size=1, limit=2))
    assert [p.pmid for b in batches for p in b.papers] == ["27797938", "28775130"]
    assert len(eutils.requests) == 3


def test_iter_search_with_nothing_found_fetches_nothing(eutils, client):
    assert list(client.iter_search("nothing at all")) == []
    assert [e for e, _ in sent(eutils)] == ["esearch.fcgi"]


def test_more_than_pubmed_hands_out_is_refused_before_fetching(eutils, client):
    with pytest.raises(FeedError, match="search 'everything' finds 10001 records.*narrow the date range"):
        list(client.iter_search("everything"))
    assert [e for e, _ in sent(eutils)] == ["esearch.fcgi"]
    assert len(list(client.iter_search("everything", batch_size=1, limit=0))) == 0


def test_efetch_by_ids(eutils, client, pubmed_dir):
    batch = client.efetch(ids=["30108519"])
    assert batch.papers == parse(pubmed_dir, "pubmed6.xml").papers
    assert batch.start_index is None
    assert sent(eutils) == [("efetch.fcgi", {"db": "pubmed", "retmode": "xml", "id": "30108519",
                                              "tool": TOOL, "email": EMAIL, "api_key": KEY})]


def test_without_key_or_email_only_tool_is_sent_and_three_a_second(eutils, clock):
    client = make_client(eutils, clock, api_key=None, email=None)
    try:
        client.efetch(ids=["12091962", "9997"])
        client.efetch(ids=["12091962", "9997"])
    finally:
        client.http.close()
    for _, params in sent(eutils):
        assert params == {"db": "pubmed", "retmode": "xml", "id": "12091962,9997", "tool": TOOL}
    assert clock.sleeps == [pytest.approx(1 / 3)]  # the second request waited its turn


def test_429_with_retry_after_is_waited_out(eutils, clock):
    eutils.overrides["esearch"] = [
        Reply(429, RATE_LIMITED, {"Retry-After": "2", "Content-Type": "application/json"}),
        Reply(200, esearch_answer(4, "1")),
    ]
    client = make_client(eutils, clock, retries=2)
    try:
        result = client.esearch("telomere")
    finally:
        client.http.close()
    assert (result.count, result.query_key) == (4, "1")
    assert clock.sleeps == [2.0]  # Retry-After, and no further spacing needed after it
    assert len(eutils.requests) == 2


def test_429_that_persists_names_ncbis_reason_without_the_key(eutils, clock):
    eutils.overrides["esearch"] = [Reply(429, RATE_LIMITED, {"Retry-After": "1"}) for _ in range(3)]
    client = make_client(eutils, clock, retries=2)
    try:
        with pytest.raises(FeedError, match="API rate limit exceeded") as caught:
            client.esearch("telomere")
    finally:
        client.http.close()
    assert caught.value.status == 429
    assert isinstance(caught.value.__cause__, HTTPStatusError)
    assert caught.value.url.startswith(eutils.url(f"{EUTILS}/esearch.fcgi?db=pubmed"))
    assert "api_key=***" in caught.value.url and KEY not in str(caught.value)
    assert clock.sleeps == [1.0, 1.0]


def test_esearch_error_document_is_a_feed_error(eutils, client):
    eutils.overrides["esearch"] = [Reply(200, ESEARCH_ERROR)]
    with pytest.raises(FeedError, match="Empty term and query_key - nothing todo") as caught:
        client.esearch("telomere")
    assert caught.value.url.startswith(eutils.url(f"{EUTILS}/esearch.fcgi?"))
    assert KEY not in caught.value.url


def test_invalid_api_key_answer_is_a_feed_error(eutils, client):
    eutils.overrides["esearch"] = [Reply(400, INVALID_KEY, {"Content-Type": "application/json"})]
    with pytest.raises(FeedError, match="API key invalid") as caught:
        client.esearch("telomere")
    assert caught.value.status == 400
    assert len(eutils.requests) == 1


def test_http_error_without_an_error_document_stays_an_http_error(eutils, client):
    eutils.overrides["esearch"] = [Reply(502, b"<html><body>Bad Gateway</body></html>")]
    with pytest.raises(HTTPStatusError, match="HTTP 502 after 1 attempts") as caught:
        client.esearch("telomere")
    assert not isinstance(caught.value, FeedError)
    assert (caught.value.status, caught.value.body) == (502, b"<html><body>Bad Gateway</body></html>")
    assert "api_key=***" in str(caught.value) and KEY not in str(caught.value)
    assert str(caught.value).startswith(eutils.url(f"{EUTILS}/esearch.fcgi?db=pubmed"))


def test_broken_connection_names_the_url_without_the_key(eutils, client):
    eutils.overrides["efetch"] = [Reply(reset=True)]
    with pytest.raises(SourceError) as caught:
        client.efetch(ids=["9997"])
    assert caught.value.url.startswith(eutils.url(f"{EUTILS}/efetch.fcgi?db=pubmed"))
    assert "api_key=***" in caught.value.url and KEY not in str(caught.value)


def test_esearch_answer_that_is_not_json(eutils, client):
    eutils.overrides["esearch"] = [Reply(200, b"<html>maintenance</html>")]
    with pytest.raises(ParseError, match="not JSON") as caught:
        client.esearch("telomere")
    assert caught.value.location.startswith(eutils.url(f"{EUTILS}/esearch.fcgi?"))


def test_expired_history_is_a_feed_error(eutils, client):
    with pytest.raises(FeedError, match="Cannot retrieve query from History") as caught:
        client.efetch(webenv="MCID_expired", query_key="1")
    assert caught.value.url.startswith(eutils.url(f"{EUTILS}/efetch.fcgi?"))
    assert isinstance(caught.value, SourceError)


def test_bad_arguments_are_refused_before_any_request(eutils, client):
    with pytest.raises(ValueError, match="not both"):
        client.efetch(ids=["9997"], webenv=WEBENV, query_key="1")
    with pytest.raises(ValueError, match="needs ids, or both"):
        client.efetch(webenv=WEBENV)
    with pytest.raises(ValueError, match="1 to 200 ids"):
        client.efetch(ids=[str(i) for i in range(1, MAX_EFETCH_BATCH + 2)])
    with pytest.raises(ValueError, match="not PMIDs: 'PMC5442267'"):
        client.efetch(ids=["9997", "PMC5442267"])
    with pytest.raises(ValueError, match="retmax must be 1..200"):
        client.efetch(webenv=WEBENV, query_key="1", retmax=201)
    with pytest.raises(ValueError, match="after maxdate"):
        client.esearch("x", mindate=date(2024, 2, 1), maxdate=date(2024, 1, 1))
    with pytest.raises(ValueError, match="datetype"):
        client.esearch("x", mindate=date(2024, 2, 1), datetype="published")
    with pytest.raises(ValueError, match="retmax must be 0..10000"):
        client.esearch("x", retmax=10_001)
    with pytest.raises(ValueError, match="batch_size"):
        list(client.iter_search("x", batch_size=0))
    with pytest.raises(ValueError, match="bad journal name"):
        client.esearch("x", journal='Gut"[ta] OR "x')
    assert eutils.requests == []
