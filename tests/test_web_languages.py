"""Two languages throughout: every message id used in templates and Python has a translation in
both catalogs (with the same parameters), errors made in Python reach a Chinese page in Chinese
(and the CLI in English), validation errors on HTML pages are translated by type, and English text
inside a Chinese page says so."""

from __future__ import annotations

import pickle
import re
import string
import warnings

import pytest
from babel.messages.extract import extract_from_dir

from academichub.errors import AcademicHubError
from academichub.settings import Settings
from academichub.store.radars import RadarError, create_radar, default_user
from academichub.web import i18n
from academichub.web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SAME_ORIGIN = {"origin": "http://testserver"}


def template_ids() -> set[str]:
    return {
        msg if isinstance(msg, str) else msg[0]
        for _, _, msg, _, _ in extract_from_dir(
            str(i18n.LOCALE_DIR.parent / "templates"),
            method_map=[("**.html", "jinja2")],
            options_map={"**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}},
        )
    }


def python_ids() -> set[str]:
    """Messages made in Python: `said("...")`, `SomeError.translatable("...")` anywhere in the
    package, and the validation messages by Pydantic error type."""
    package = i18n.LOCALE_DIR.parent.parent
    found = {
        msg if isinstance(msg, str) else msg[0]
        for _, _, msg, _, _ in extract_from_dir(
            str(package), method_map=[("**.py", "python")], keywords={"said": None, "translatable": None}
        )
    }
    return found | set(i18n.VALIDATION_MESSAGES.values())


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_message_id_has_a_translation_in_both_catalogs():
    python = python_ids()
    assert "a radar named {name!r} already exists" in python and "this value is required" in python
    assert len(python) > 45
    wanted = template_ids() | python
    for lang in i18n.LANGUAGES:
        catalog = i18n.read_catalog(lang)
        translated = {m.id if isinstance(m.id, str) else m.id[0]: m.string for m in catalog if m.id and m.string and not m.fuzzy}
        missing = sorted(wanted - set(translated))
        assert missing == [], (lang, missing)
        for msgid in python:  # a translation fills in the same parameters, or formatting would fail
            assert fields(translated[msgid]) <= fields(msgid), (lang, msgid, translated[msgid])
    zh = i18n.load_translations("zh")
    for msgid in python:
        assert zh.gettext(msgid) != msgid, msgid
        assert re.search(r"[\u4e00-\u9fff]", zh.gettext(msgid)), msgid


def test_a_translatable_error_is_english_for_the_cli_and_keeps_its_id():
    error = RadarError.translatable("a radar named {name!r} already exists", name="量子")
    assert str(error) == "a radar named '量子' already exists"
    again = pickle.loads(pickle.dumps(error))  # errors cross process boundaries (the job workers)
    assert (again.template, again.params, str(again)) == (error.template, {"name": "量子"}, str(error))
    zh, en = i18n.load_translations("zh"), i18n.load_translations("en")
    assert i18n.say(error, zh) == "已有名为“量子”的雷达"
    assert i18n.say(error, en) == "a radar named '量子' already exists"
    assert i18n.say(AcademicHubError("plain text"), zh) == "plain text"
    assert i18n.say(i18n.said("at most {limit} categories at once", limit=50), zh) == "一次最多 50 个分类"


def test_store_errors_carry_their_message_ids(engine):
    with engine.begin() as conn:
        user = default_user(conn)
        create_radar(conn, user_id=user, name="Quantum", interest="")
        with pytest.raises(RadarError) as raised:
            create_radar(conn, user_id=user, name="Quantum", interest="")
    assert raised.value.template == "a radar named {name!r} already exists"
    assert str(raised.value) == "a radar named 'Quantum' already exists"


# -- pages ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lang_client(zh_sample_client):
    return zh_sample_client


def alert(html: str) -> str:
    found = re.search(r'role="alert"[^>]*>(.*?)</p>', html, re.S)
    assert found, "no error shown"
    return " ".join(found.group(1).split())


def test_radar_form_errors_are_in_the_page_language(lang_client):
    created = lang_client.post("/radars", data={"name": "Quantum dots", "interest": ""}, headers=SAME_ORIGIN,
                               follow_redirects=False)
    assert created.status_code == 303
    zh = lang_client.post("/radars?lang=zh", data={"name": "Quantum dots"}, headers=SAME_ORIGIN)
    assert zh.status_code == 400 and alert(zh.text) == "已有名为“Quantum dots”的雷达"
    en = lang_client.post("/radars?lang=en", data={"name": "Quantum dots"}, headers=SAME_ORIGIN)
    assert en.status_code == 400 and alert(en.text) == "a radar named &#39;Quantum dots&#39; already exists"
    nameless = lang_client.post("/radars?lang=zh", data={"name": "  "}, headers=SAME_ORIGIN)
    assert alert(nameless.text) == "雷达需要一个名称"
    # an editor error: a category rule that is not one
    rule = lang_client.post("/radars/Quantum%20dots/rules?lang=zh", data={"kind": "category", "value": "cs.XYZ"},
                            headers=SAME_ORIGIN)
    assert rule.status_code == 400
    assert alert(rule.text) == "未保存： “cs.XYZ”不是 arXiv 分类（形如 cs.LG、hep-th、math.CO、cond-mat.stat-mech）"


def test_category_follow_errors_are_in_the_page_language(lang_client):
    page = lang_client.post("/sources/categories?lang=zh", data={"category": ["cs.NOPE"]}, headers=SAME_ORIGIN)
    assert page.status_code == 400
    assert alert(page.text) == "不是 arXiv 分类：&#39;cs.NOPE&#39;（分类代码形如 cs.LG、math.ST、quant-ph）"


def problems(html: str) -> list[str]:
    return [" ".join(re.sub(r"<[^>]+>", "", item).split()) for item in re.findall(r"<li>(.*?)</li>", html.split('class="problems"')[1].split("</ul>")[0], re.S)]


def test_validation_errors_on_html_pages_are_translated_by_type(lang_client):
    page = lang_client.get("/", params={"batch": "abc", "lang": "zh"})
    assert page.status_code == 422 and "<h1>请求无效</h1>" in page.text
    assert problems(page.text) == ["batch: 不是整数"]
    page = lang_client.get("/", params={"batch": "-1", "size": "1000", "lang": "zh"})
    assert sorted(problems(page.text)) == ["batch: 不能小于 0", "size: 不能大于 100"]
    page = lang_client.get("/", params={"date": "2024-13-01", "lang": "zh"})
    assert problems(page.text) == ["date: 不是有效的日期（YYYY-MM-DD）"]
    page = lang_client.get("/", params={"q": "x" * 301, "lang": "zh"})
    assert problems(page.text) == ["q: 搜索文本超过 300 个字符"]
    page = lang_client.get("/", params={"lang": "fr"})
    assert problems(page.text) == ["lang: lang 只能是 zh 或 en"]
    english = lang_client.get("/", params={"batch": "abc", "lang": "en"})
    assert problems(english.text) == ["batch: not a whole number"]
    # the JSON API keeps Pydantic's own English and shape
    api = lang_client.get("/api/papers", params={"batch": "abc"}, headers={"accept-language": "zh"})
    assert api.status_code == 422
    assert api.json()["detail"][0]["type"] == "int_parsing" and "valid integer" in api.json()["detail"][0]["msg"]
    date = lang_client.get("/api/papers", params={"date": "2024-13-01"}).json()["detail"][0]
    assert date == {"loc": ["query", "date"], "msg": "not a valid calendar date (YYYY-MM-DD)", "type": "value_error"}


def test_the_feed_has_the_heading_and_tagline_in_both_languages(lang_client):
    zh = lang_client.get("/", params={"lang": "zh"}).text
    assert '<h1 class="tagline">探索全球前沿学术脉络</h1>' in zh
    assert '<p class="tagline-sub">汇聚顶级期刊与预印本平台的实时文献，由大模型撰写跨领域简报，定制您的专属科研雷达</p>' in zh
    en = lang_client.get("/", params={"lang": "en"}).text
    assert '<h1 class="tagline">Explore the frontier of global research</h1>' in en


def test_english_text_on_a_chinese_page_is_marked_english(lang_client):
    zh = lang_client.get("/", params={"lang": "zh", "seed": 7}).text
    titles = re.findall(r'<h2 class="card-title"([^>]*)>', zh)
    abstracts = re.findall(r'<p class="abstract-text"([^>]*)>', zh)
    assert len(titles) == 10 and set(titles) == {' lang="en"'}
    assert abstracts and set(abstracts) == {' lang="en"'}
    en = lang_client.get("/", params={"lang": "en", "seed": 7}).text
    assert set(re.findall(r'<h2 class="card-title"([^>]*)>', en)) == {""}


def test_first_run_and_journal_errors_are_in_the_page_language(engine):
    with TestClient(create_app(Settings(load_sample=False, default_language="zh"), engine=engine)) as client:
        refused = client.post("/welcome?lang=zh", data={"name": "r", "interest": "x"}, headers=SAME_ORIGIN)
        assert refused.status_code == 400 and alert(refused.text) == "请至少选择一个要关注的 arXiv 分类或期刊"
        journal = client.post("/sources/follow?lang=zh", data={"venue": "no-such-journal"}, headers=SAME_ORIGIN)
        assert journal.status_code == 404 and alert(journal.text) == "期刊目录中没有“no-such-journal”"
