"""Text helpers of the briefing: sentences, words, key-phrase candidates and quoted numbers.

Key-phrase candidates are word n-grams (1-3) that never span a stop word or punctuation, so every
phrase occurs verbatim in the text ("graph neural networks", never "state art" out of "state of
the art"). LaTeX math ($...$) counts as punctuation: it separates phrases and is never one."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# Words that say nothing about a paper's topic in an abstract; they split phrases like stop words.
ACADEMIC_STOP_WORDS = frozenset(
    """
    paper papers propose proposes proposed proposing present presents presented study studies studied
    show shows shown showing demonstrate demonstrates demonstrated result results approach approaches
    method methods methodology novel new based using use used uses work works existing recent recently
    performance perform performs framework frameworks problem problems task tasks
    achieve achieves achieved achieving state-of-the-art art outperform outperforms outperforming
    significant significantly effective effectively efficient efficiently improve improves improved
    improving improvement improvements introduce introduces introduced address addresses addressing
    investigate investigates investigated explore explores explored analysis analyze analyzes analyse
    provide provides provided providing various different including include includes furthermore
    moreover however additionally specifically particular particularly respectively compared
    comparison experiments experimental extensive evaluate evaluates evaluated evaluation
    key important challenges challenge challenging potential enable enables enabling leverage leverages
    leveraging utilize utilizes utilizing obtain obtained obtains develop develops developed developing
    consider considers considered discuss discusses discussed describe describes described given find
    finds found able allows allow allowing paradigm recent promising demonstrates superior
    et al ie eg i.e e.g vs via thus hence also well make makes made
    accuracy research researchers system systems application applications information technique techniques
    quality process processes tool tools strategy strategies scenario scenarios aspect aspects
    first second third one two three four five six seven eight nine ten many several number numbers
    case cases set sets term terms type types level levels result's aim aims
    """.split()
)
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | ACADEMIC_STOP_WORDS

_MATH = re.compile(r"\$\$.+?\$\$|\$[^$]*\$|\\\(.+?\\\)|\\\[.+?\\\]", re.S)
_BREAK = re.compile(r"[.,;:!?()\[\]{}\"“”‘’«»/|<>=+*&^%#@~`]|\s[-–—]\s|\s'|'\s")
_WORD = re.compile(r"[^\W\d_][\w]*(?:[-'][^\W_]+)*")
_ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "etc.", "vs.", "Fig.", "Figs.", "Eq.", "Eqs.", "Ref.", "Refs.",
                  "approx.", "cf.", "resp.", "No.", "Sec.", "Dr.", "Prof.", "St.")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[A-Z0-9$\\(\[\"'])|(?<=[。！？])")


_ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328", "r": "\u030a"}
_LATEX_ACCENT = re.compile(
    r"\{?\\(?:([\"'`^~=.])\s*\{?\s*([A-Za-z])\}?|([uvHckr])(?:\{\s*([A-Za-z])\s*\}|\s+([A-Za-z])))\}?"
)
_LATEX_LETTERS = {r"\ss": "ß", r"\o": "ø", r"\O": "Ø", r"\aa": "å", r"\AA": "Å", r"\l": "ł", r"\L": "Ł", r"\ae": "æ"}


def normalise(text: str) -> str:
    """NFKC (full-width digits and ％ become ASCII) with white space collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text or "").split())


def plain(text: str) -> str:
    """normalise() with LaTeX accents decoded (Schr\\"odinger -> Schrödinger): the text that
    phrases are taken from. Math is left alone."""
    text = normalise(text)
    if "\\" not in text:
        return text

    def accent(match: re.Match) -> str:
        mark = match.group(1) or match.group(3)
        letter = match.group(2) or match.group(4) or match.group(5)
        return unicodedata.normalize("NFC", letter + _ACCENTS[mark])

    text = _LATEX_ACCENT.sub(accent, text)
    for command, letter in _LATEX_LETTERS.items():
        text = re.sub(r"\{?" + re.escape(command) + r"(?![A-Za-z])\}?\s?", letter, text)
    return text


def strip_math(text: str) -> str:
    return _MATH.sub(" , ", text)


def split_sentences(text: str) -> list[str]:
    """Sentences of an abstract. Abbreviations (e.g., et al., Fig.) do not end one; math is kept whole."""
    text = normalise(text)
    if not text:
        return []
    # Protect abbreviations and math from the splitter, then restore them.
    protected: list[str] = []

    def keep(match: re.Match) -> str:
        protected.append(match.group(0))
        return f"\x00{len(protected) - 1}\x00"

    masked = _MATH.sub(keep, text)
    for abbreviation in _ABBREVIATIONS:
        masked = masked.replace(abbreviation, abbreviation.replace(".", "\x01"))
    parts = [p.strip() for p in _SENTENCE_END.split(masked) if p and p.strip()]
    restored = []
    for part in parts:
        part = part.replace("\x01", ".")
        part = re.sub(r"\x00(\d+)\x00", lambda m: protected[int(m.group(1))], part)
        restored.append(part)
    return restored


def words(text: str) -> list[str]:
    """Lower-case words (letters first, hyphenated compounds kept), math removed."""
    return _WORD.findall(strip_math(plain(text)).lower())


@lru_cache(maxsize=4096)
def _chunk_phrases(chunk: str, max_n: int) -> tuple[str, ...]:
    tokens = _WORD.findall(chunk)
    found: list[str] = []
    run: list[str] = []

    def flush() -> None:
        for size in range(1, max_n + 1):
            for start in range(0, len(run) - size + 1):
                found.append(" ".join(run[start : start + size]))
        run.clear()

    for token in tokens:
        if token in STOP_WORDS or len(token) < 2 or token.endswith("'s") and token[:-2] in STOP_WORDS:
            flush()
        else:
            run.append(token.removesuffix("'s"))
    flush()
    return tuple(found)


def phrases(text: str, max_n: int = 3) -> list[str]:
    """Key-phrase candidates of a text: n-grams (1..max_n) of content words, within punctuation
    and stop-word boundaries. Repeats are kept (they are counts)."""
    text = strip_math(plain(text)).lower()
    found: list[str] = []
    for chunk in _BREAK.split(text):
        if chunk.strip():
            found.extend(_chunk_phrases(chunk, max_n))
    return found


def paper_text(title: str, abstract: str) -> str:
    """The text the briefing analyses: the title twice (it names the topic), then the abstract."""
    title = plain(title)
    return f"{title}. {title}. {plain(abstract)}"


# ----------------------------------------------------------------------------- untrusted text

# Instruction-like text: an abstract has no reason to address "previous instructions" or a prompt.
INSTRUCTION = re.compile(
    r"(?i)\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|these\s+)?"
    r"(?:previous|prior|above|earlier|preceding|system|original|former)\b.{0,30}?\b(?:instructions?|prompts?)\b"
    r"|\bsystem prompt\b|\byou are now (?:in|a|an)\b|\bnew instructions\b"
    r"|忽略.{0,20}(?:指令|指示|规则|提示)|系统提示"
)
DEFUSED = "[instruction-like text removed]"


def defuse(abstract: str) -> str:
    """An abstract cut at its first instruction-like sentence ("Ignore previous instructions…"):
    injected text is usually appended, and nothing after such a sentence is trusted as the
    paper's content. Abstracts without one are returned unchanged."""
    if not abstract or not INSTRUCTION.search(abstract):
        return abstract
    kept: list[str] = []
    for sentence in split_sentences(abstract):
        if INSTRUCTION.search(sentence):
            kept.append(DEFUSED)
            break
        kept.append(sentence)
    return " ".join(kept)


# ----------------------------------------------------------------------------- numbers

# A quoted figure: digits with optional thousands separators and decimals, then an optional unit
# that changes its meaning (%, x/×/-fold/times/倍). Digits inside identifiers (GPT-4, 3D, H2O, v2,
# arXiv ids, [3] citations) are not figures.
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.\-/\\^])"
    r"(?P<value>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<unit>\s?\\?%|\s?percent\b|\s?per\s?cent\b|\s?(?:x|×|\\times)(?![a-z])|-?fold\b|\s?times\b|\s?倍)?"
    r"(?![A-Za-z0-9_]|\.\d)"
)


def _unit(raw: str | None) -> str:
    if not raw:
        return ""
    raw = raw.strip().lower().lstrip("\\")
    if raw in ("%", "percent", "per cent") or raw.endswith("%") or "cent" in raw:
        return "%"
    return "x"


def _value(raw: str) -> str:
    value = raw.replace(",", "")
    if "." in value:
        value = value.rstrip("0").rstrip(".") or "0"
    value = value.lstrip("0") or "0"
    if value.startswith("."):
        value = "0" + value
    return value


def numbers_in(text: str) -> set[tuple[str, str]]:
    """The figures a text quotes, as (value, unit) with unit "%", "x" or "": "1,200" -> ("1200", ""),
    "6.22 %" -> ("6.22", "%"), "3.5×" -> ("3.5", "x"). Citation markers [n] are not figures."""
    text = normalise(text)
    text = re.sub(r"\[\s*\d+(?:\s*[,–-]\s*\d+)*\s*\]", " ", text)  # [3], [1, 4], [2-5]
    text = text.replace("$", " ").replace("{", " ").replace("}", " ")
    return {(_value(m.group("value")), _unit(m.group("unit"))) for m in _NUMBER.finditer(text)}


def number_supported(figure: tuple[str, str], available: set[tuple[str, str]]) -> bool:
    """A figure is supported when the source quotes the same value with the same unit; a bare
    value is supported by the value with any unit ("65" by "65%"), never the other way round."""
    value, unit = figure
    if figure in available:
        return True
    if not unit:
        return any(v == value for v, _ in available)
    return False
