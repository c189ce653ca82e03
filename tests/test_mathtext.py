"""TeX math rendered as MathML on the server (web/mathtext.py): exact fragments for the bundled
day's real titles and abstracts, the fallbacks (a run that does not convert, a lone dollar), no
markup from upstream text, and the pages that show it."""

from __future__ import annotations

import re

import pytest

from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import Settings
from academichub.web.app import create_app
from academichub.web.i18n import text_lang_attribute
from academichub.web.mathtext import has_cjk, plain_text, render_math, split_math, tex_to_mathml
from test_api_docs import browser  # noqa: F401 - the Chromium fixture

NS = 'xmlns="http://www.w3.org/1998/Math/MathML"'


def inline(tex_escaped: str, body: str) -> str:
    return (f'<math {NS} display="inline" alttext="{tex_escaped}"><semantics><mrow>{body}</mrow>'
            f'<annotation encoding="application/x-tex">{tex_escaped}</annotation></semantics></math>')


ELL0 = inline(r"\ell_0", "<msub><mi>ℓ</mi><mn>0</mn></msub>")
LAMBDA_B = inline(r"\Lambda_b \to \Sigma^0 K^+ K^-",
                  "<msub><mi>Λ</mi><mi>b</mi></msub><mo>→</mo><msup><mi>Σ</mi><mn>0</mn></msup>"
                  "<msup><mi>K</mi><mo>+</mo></msup><msup><mi>K</mi><mo>−</mo></msup>")
H3 = inline("H^3", "<msup><mi>H</mi><mn>3</mn></msup>")
PERCENT20 = inline(r"20\%", "<mn>20</mn><mi>%</mi>")


def test_the_sample_titles_and_abstracts_become_exact_mathml():
    assert str(render_math(r"$H^3$Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs")) == (
        H3 + "Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs"
    )
    assert str(render_math(r"often regularized by the $\ell_0$ norm.")) == f"often regularized by the {ELL0} norm."
    assert str(render_math(r"particularly $\Lambda_b \to \Sigma^0 K^+ K^-$, and")) == f"particularly {LAMBDA_B}, and"
    assert str(render_math(r"an improvement of at least $20\%$ over")) == f"an improvement of at least {PERCENT20} over"
    assert str(render_math(r"Excitonic Insulator Ta$_2$NiSe$_5$")).count("<msub><mi></mi><mn>") == 2
    # \( ... \) is math too
    assert str(render_math(r"the \(\ell_0\) norm")) == f"the {ELL0} norm"
    # arXiv's looser spacing: a space inside the dollars, a digit right after
    sim = inline(r"\sim", "<mi>~</mi>")
    assert str(render_math(r"within $\sim$97% of the data")) == f"within {sim}97% of the data"
    assert str(render_math(r"the rank of $ \ell_0 $ here")) == f"the rank of {ELL0} here"
    assert str(render_math(r"walk matrix $W_Q\left( A_n \right) $ of")).count("<math") == 1


def test_text_mode_tex_outside_math_is_written_as_characters():
    assert plain_text(r"96.20\% reduction in computational complexity") == "96.20% reduction in computational complexity"
    assert plain_text(r"Schr\"odinger operator with P\"oschl--Teller potential") == "Schrödinger operator with Pöschl--Teller potential"
    assert plain_text(r"$d$-Degree Erd\H{o}s-Ko-Rado") == "$d$-Degree Erdős-Ko-Rado"
    assert plain_text(r"kagom\'e spin") == "kagomé spin"
    assert str(render_math(r"over 10\% and 20\% improvements")) == "over 10% and 20% improvements"


def test_a_lone_dollar_and_prices_stay_text():
    assert split_math("costs $5 and $10 a month") == [("text", "costs $5 and $10 a month", False, "costs $5 and $10 a month")]
    assert str(render_math("costs $5 and $10 a month")) == "costs $5 and $10 a month"
    assert str(render_math("a lone $ sign")) == "a lone $ sign"
    assert str(render_math(r"an escaped \$x\$ dollar")) == "an escaped $x$ dollar"


def test_a_run_that_does_not_convert_keeps_its_source():
    assert tex_to_mathml(r"\notacommand x") is None
    assert str(render_math(r"a $\notacommand x$ b")) == r"a $\notacommand x$ b"
    assert str(render_math(r"a \(\notacommand\) b")) == r"a \(\notacommand\) b"


def test_upstream_text_never_becomes_markup():
    rendered = str(render_math(r"x<y & $\text{<script>alert(1)</script>}$ $\href{javascript:alert(1)}{y}$ $\style{color:red}{z}$"))
    assert "<script" not in rendered and "javascript:" not in rendered.split("alttext")[0]
    assert "x&lt;y &amp; " in rendered and "<mtext>&lt;script&gt;alert(1)&lt;/script&gt;</mtext>" in rendered
    assert "href=" not in rendered and "style=" not in rendered
    assert str(render_math("<b>bold</b>")) == "&lt;b&gt;bold&lt;/b&gt;"


def test_language_of_upstream_text():
    assert has_cjk("图神经网络") and not has_cjk("Graph neural networks") and not has_cjk("")
    assert str(text_lang_attribute("Graph neural networks", "zh")) == ' lang="en"'
    assert str(text_lang_attribute("Graph neural networks", "en")) == ""
    assert str(text_lang_attribute("基于图神经网络的方法", "en")) == ' lang="zh-CN"'
    assert str(text_lang_attribute("基于图神经网络的方法", "zh")) == ""


# -- the pages ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def math_client(zh_sample_client):
    return zh_sample_client


def test_paper_pages_render_math_in_title_and_abstract(math_client):
    page = math_client.get("/papers/2411.17792").text
    assert f'<h1 class="paper-title" lang="en">{H3}Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs</h1>' in page
    page = math_client.get("/papers/2411.18400").text
    assert LAMBDA_B in page
    page = math_client.get("/papers/2311.17434").text
    assert f"often regularized by the {ELL0} norm." in page
    page = math_client.get("/papers/2411.17728").text
    assert f"achieving an improvement of at least {PERCENT20} over traditional methods" in page
    # the page's <title> keeps the source text: no markup there
    assert re.search(r"<title>\$H\^3\$Fusion", math_client.get("/papers/2411.17792").text)


def test_feed_cards_render_math_and_mark_english_text(math_client):
    page = math_client.get("/", params={"q": "Fusion Aligned LLMs"}).text
    assert ('<h2 class="card-title" lang="en"><a href="https://arxiv.org/abs/2411.17792" rel="noopener noreferrer" '
            f'target="_blank">{H3}Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs</a></h2>') in page
    # a search shows the abstract's matching part, or the whole abstract when that part cuts a formula
    assert re.search(r'<p class="abstract-(snippet|text)" lang="en">', page)
    # the card's text shows math; its TeX source survives only in alttext/annotations, the <title>,
    # and the cite box: BibTeX/RIS/plain citations are text to copy into a reference manager, where
    # TeX is how a formula in a title is written (BibTeX reads $H^3$ itself)
    cite_boxes = re.findall(r'<details class="cite-box">.*?</details>', page, flags=re.S)
    assert any("title = {{$H^3$Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs}}" in box for box in cite_boxes)
    assert "$H^3$" not in re.sub(r'alttext="[^"]*"|<annotation[^>]*>.*?</annotation>|<title>.*?</title>'
                                 r'|<details class="cite-box">.*?</details>', "", page, flags=re.S)
    english = math_client.get("/", params={"q": "Fusion Aligned LLMs", "lang": "en"}).text
    assert 'class="card-title" lang="en"' not in english and H3 + "Fusion" in english


def test_briefing_quotes_and_the_radar_preview_render_math(math_client):
    """The day's briefing quotes abstracts with TeX in them; whichever it picks, a quote's math is
    MathML and its source survives only in alttext/annotations."""
    math_client.post("/briefing", params={"lang": "zh"})  # written by a POST; the GET reads it
    page = math_client.get("/briefing", params={"lang": "zh"}).text
    quotes = re.findall(r'<span class="quote"[^>]*>.*?</span>', page, re.S)
    with_math = [q for q in quotes if "<math" in q]
    assert with_math, "no briefing quote with math"
    for quote in with_math:
        shown = re.sub(r'<annotation[^>]*>.*?</annotation>|alttext="[^"]*"', "", quote, flags=re.S)
        assert not re.search(r"\$[^$\s][^$]*\\[A-Za-z]", shown), quote
    # the radar editor's live preview uses the same cards
    math_client.post("/radars", data={"name": "Fusion", "interest": ""}, headers={"origin": "http://testserver"})
    math_client.post("/radars/Fusion/rules", data={"kind": "keyword", "value": "Honest Fusion"},
                     headers={"origin": "http://testserver"})
    preview = math_client.get("/radars/Fusion/preview").text
    assert H3 + "Fusion: Helpful, Harmless, Honest Fusion of Aligned LLMs" in preview


# -- in Chromium ----------------------------------------------------------------------------------


@pytest.fixture
def sample_server(engine):
    """The app under a real uvicorn server on a free port, over a temp store with the sample day."""
    from browser_support import serving

    load_sample_if_empty(engine)
    with serving(create_app(Settings(load_sample=False, default_language="zh", batch_size=10), engine=engine)) as base:
        yield base


@pytest.mark.parametrize("viewport", [(1366, 900), (390, 844)])
def test_chromium_lays_out_the_mathml(sample_server, browser, viewport):
    """Chromium renders the MathML (a superscript sits above its base), with no CSP complaint."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(f"{sample_server}/papers/2411.17792?lang=zh")
    base = page.locator("h1.paper-title math msup > mi").bounding_box()
    exponent = page.locator("h1.paper-title math msup > mn").bounding_box()
    assert base and exponent and base["height"] > 0 and exponent["height"] > 0
    assert exponent["y"] < base["y"] and exponent["x"] > base["x"]  # raised and to the right: real MathML
    # MathML Core draws a one-letter <mi> in italic: the text reads 𝐻 (U+1D43B), 3, Fusion
    assert page.locator("h1.paper-title").inner_text().replace("\n", "").startswith("\U0001d43b3Fusion")
    assert page.locator("h1.paper-title").get_attribute("lang") == "en"
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport[0]
    assert [p for p in problems if "Content Security Policy" in p] == []
    context.close()
