"""`academichub bench daily`: one simulated announcement day through the daily loop, end to end,
and the same loop for many radars on 1, 2 and 4 worker processes.

The day is the recorded arXiv RSS announcement (1,504 items), its records replicated under new
arXiv ids up to the size asked for (as issue 17 replicated records to reach 150,000), served by a
local HTTP server; radars are made from the day's own categories, authors and title words. The
embedding is left out of the loop (it is measured apart, `academichub embed` / `bench rank`), so
the figures are those of fetching, merging, ranking, briefing and delivering."""

from __future__ import annotations

import copy
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from email.utils import format_datetime
from datetime import datetime, time as dtime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from lxml import etree

from .sources.xmlsafe import parse_xml

RECORDED_DAY = "arxiv/rss/2024-11-28-all-archives.xml"
_EASTERN = timezone(timedelta(hours=-5))


def day_feed(recorded: bytes, day: date, size: int) -> bytes:
    """The recorded announcement moved to `day`, with `size` items: the recorded ones first, then
    copies under new arXiv ids (the month part moved on by one per round of copies)."""
    root = parse_xml(recorded, RECORDED_DAY)
    channel = root.find("channel")
    stamp = format_datetime(datetime.combine(day, dtime(), _EASTERN))
    for node in root.iter("pubDate", "lastBuildDate"):
        node.text = stamp
    items = channel.findall("item")
    for item in items[size:]:
        channel.remove(item)
    made, round_ = len(items), 0
    while made < size:
        round_ += 1
        for item in items:
            if made >= size:
                break
            channel.append(_renumbered(item, round_))
            made += 1
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _renumbered(item, round_: int):
    clone = copy.deepcopy(item)
    old = clone.findtext("link").rsplit("/", 1)[-1]
    yymm, number = old.split(".", 1)
    year, month = divmod(int(yymm[:2]) * 12 + int(yymm[2:]) - 1 + round_, 12)
    new = f"{year:02d}{month + 1:02d}.{number}"
    for node in clone.iter():
        if node.text and old in node.text:
            node.text = node.text.replace(old, new)
    return clone


@dataclass(frozen=True)
class RadarPlan:
    name: str
    categories: tuple[str, ...]
    keywords: tuple[str, ...]
    authors: tuple[str, ...]
    interest: str | None


def radar_plans(feed: bytes, count: int) -> list[RadarPlan]:
    """`count` radars a lab might have, from the day itself: each follows one of the day's busy
    categories, a frequent title word of that category and one of its authors; every third also has
    an interest statement (a title of the day)."""
    from .sources.arxiv_rss import parse_rss

    papers = parse_rss(feed, "day").papers
    by_category: dict[str, list] = {}
    for paper in papers:
        if paper.categories:
            by_category.setdefault(paper.categories[0], []).append(paper)
    busy = [c for c, _ in Counter({c: len(p) for c, p in by_category.items()}).most_common(40)]
    plans = []
    for i in range(count):
        category = busy[i % len(busy)]
        group = by_category[category]
        words = Counter(w.lower().strip(".,:;()") for p in group for w in p.title.split() if len(w) > 6)
        keyword = [w for w, _ in words.most_common(5)][i // len(busy) % 5] if words else category
        author = group[(7 * i) % len(group)].authors[0].name if group[(7 * i) % len(group)].authors else None
        interest = group[(3 * i) % len(group)].title if i % 3 == 0 else None
        plans.append(RadarPlan(f"radar-{i:04d}", (category,), (keyword,), (author,) if author else (), interest))
    return plans


class _DayServer(ThreadingHTTPServer):
    daemon_threads = True


@contextmanager
def serve_day(feed: bytes) -> Iterator[tuple[str, list[str]]]:
    """A local arXiv: every /rss/… path answers the day's feed. Yields (base URL, requests seen)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802 - http.server naming
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(feed)))
            self.end_headers()
            self.wfile.write(feed)

    server = _DayServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/rss/", seen
    finally:
        server.shutdown()
        server.server_close()


def recorded_day(shared_data: Path) -> bytes:
    return (Path(shared_data) / RECORDED_DAY).read_bytes()
