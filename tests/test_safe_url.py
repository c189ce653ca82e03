"""Fetching user-supplied URLs without SSRF. Name resolution is injected (no DNS is asked), except
where a real local server on 127.0.0.1 must be refused, or must be reached under a name that the
injected resolver calls public so that its redirect to 127.0.0.1 can be seen being refused."""

from __future__ import annotations

import socket

import httpx
import pytest
from localserver import Reply

from academichub.errors import SourceError
from academichub.sources.http import PoliteClient
from academichub.sources.safe_url import GuardedTransport, check_public_url, guarded_client_hooks

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


def resolver_for(table: dict[str, list[str]]):
    """A getaddrinfo stand-in answering from a table; it records what it was asked."""
    asked: list[str] = []

    def resolve(host, port, family=0, type=0, proto=0, flags=0):
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in table[host]
        ]

    resolve.asked = asked
    return resolve


@pytest.fixture
def public():
    """Every name here is public; "localhost" too, so a local server can play a public one."""
    return resolver_for({"feeds.example.org": [PUBLIC_V4, PUBLIC_V6], "localhost": [PUBLIC_V4]})


@pytest.mark.parametrize(
    "url",
    [
        "https://feeds.example.org/nature.rss",
        "http://feeds.example.org:8080/rss?a=1&b=@c",  # an @ in the query is not userinfo
        f"http://{PUBLIC_V4}/feed.xml",
        f"https://[{PUBLIC_V6}]/feed.xml",
    ],
)
def test_public_urls_pass_unchanged(url, public):
    assert check_public_url(f"  {url} ", resolver=public) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file' is not http or https"),
        ("ftp://feeds.example.org/x", "scheme 'ftp'"),
        ("gopher://feeds.example.org/x", "scheme 'gopher'"),
        ("feeds.example.org/rss", "scheme"),
        ("http://user:secret@feeds.example.org/", "user name or password"),
        ("http://feeds.example.org@127.0.0.1/", "user name or password"),
        ("http://feeds.example.org\\@127.0.0.1/", "backslashes"),
        ("http:///nohost", "no host"),
    ],
)
def test_refused_url_forms(url, reason, public):
    with pytest.raises(SourceError, match="refused: .*" + reason) as caught:
        check_public_url(url, resolver=public)
    assert caught.value.url == url
    assert public.asked == []  # refused before any lookup


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("[::1]", "loopback"),
        ("2130706433", "127.0.0.1 (loopback)"),  # decimal
        ("0x7f000001", "127.0.0.1 (loopback)"),  # hex
        ("0x7f.1", "127.0.0.1 (loopback)"),  # inet_aton's two-part hex form
        ("0177.0.0.1", "refused"),  # octal: httpx itself rejects it
        ("017700000001", "127.0.0.1 (loopback)"),  # octal, one part
        ("127.1", "127.0.0.1 (loopback)"),
        ("0", "0.0.0.0 (unspecified)"),
        ("0.0.0.0", "unspecified"),
        ("[::]", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "shared address space"),
        ("169.254.169.254", "link-local"),  # the cloud metadata service
        ("[fe80::1]", "link-local"),
        ("[fc00::1]", "private"),
        ("[fd12:3456::1]", "private"),
        ("224.0.0.1", "multicast"),
        ("224.0.1.1", "multicast"),  # globally scoped multicast is still refused
        ("[ff02::1]", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),  # the broadcast address
        ("[::ffff:127.0.0.1]", "IPv4 127.0.0.1 inside IPv6: loopback"),
        ("[::ffff:10.0.0.1]", "IPv4 10.0.0.1 inside IPv6: private"),
        ("[2002:c0a8:101::1]", "IPv4 192.168.1.1 inside IPv6: private"),  # 6to4
        ("[2001:db8::1]", "private"),  # documentation range
        ("1.2.3.4.5", "numeric address in an unrecognised form"),
    ],
)
def test_literal_addresses_that_are_not_public_are_refused(host, reason, public):
    with pytest.raises(SourceError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_public_url(f"http://{host}/latest/meta-data/", resolver=public)
    assert public.asked == []  # a literal address is judged as written, not looked up


def test_every_resolved_address_is_checked():
    # A name listing a public address first and a private one after must still be refused.
    rebinding = resolver_for({"mixed.example.org": [PUBLIC_V4, "10.0.0.5"], "v6only.example.org": [PUBLIC_V6, "::1"]})
    with pytest.raises(SourceError, match=r"host mixed\.example\.org is 10\.0\.0\.5 \(private\)"):
        check_public_url("https://mixed.example.org/rss", resolver=rebinding)
    with pytest.raises(SourceError, match=r"host v6only\.example\.org is ::1 \(loopback\)"):
        check_public_url("https://v6only.example.org/rss", resolver=rebinding)
    mapped = resolver_for({"mapped.example.org": ["::ffff:169.254.169.254"]})
    with pytest.raises(SourceError, match="inside IPv6: link-local"):
        check_public_url("http://mapped.example.org/", resolver=mapped)


def test_a_name_that_does_not_resolve_is_refused(public):
    with pytest.raises(SourceError, match="cannot resolve host nowhere.invalid") as caught:
        check_public_url("http://nowhere.invalid/feed", resolver=public)
    assert isinstance(caught.value.__cause__, socket.gaierror)


def test_the_name_is_resolved_for_the_urls_port():
    seen: list[tuple] = []

    def resolve(host, port, *rest):
        seen.append((host, port))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, port))]

    check_public_url("https://Feeds.Example.org./rss", resolver=resolve)
    check_public_url("http://feeds.example.org:8080/rss", resolver=resolve)
    assert seen == [("feeds.example.org", 443), ("feeds.example.org", 8080)]


def test_a_real_local_server_is_refused_with_the_real_resolver(local_server):
    local_server.route("/admin", body=b"internal")
    url = local_server.url("/admin")
    with pytest.raises(SourceError, match=r"127\.0\.0\.1 is loopback"):
        check_public_url(url)
    with PoliteClient(user_agent="AcademicHub-tests", retries=0, transport=GuardedTransport()) as client:
        with pytest.raises(SourceError, match="loopback"):
            client.get(url)
    assert local_server.requests == []  # refused before a byte was sent


def test_localhost_by_name_is_refused_with_the_real_resolver():
    with pytest.raises(SourceError, match=r"host localhost is (127\.0\.0\.1|::1) \(loopback\)"):
        check_public_url("http://localhost:9/")


def _redirecting_server(local_server) -> str:
    """A server reached as "localhost" (which the injected resolver calls public) that redirects
    to itself by address: the second hop must be refused."""
    target = local_server.url("/internal")
    local_server.route("/feed", responses=[Reply(302, headers={"Location": target})])
    local_server.route("/internal", body=b"secret")
    return local_server.url("/feed").replace("127.0.0.1", "localhost")


def test_a_redirect_to_a_private_address_is_refused_by_the_transport(local_server, public):
    start = _redirecting_server(local_server)
    with PoliteClient(user_agent="AcademicHub-tests", retries=0, transport=GuardedTransport(resolver=public)) as client:
        with pytest.raises(SourceError, match=r"refused: 127\.0\.0\.1 is loopback") as caught:
            client.get(start)
    assert caught.value.url.endswith("/internal")
    assert [path for path, _ in local_server.requests] == ["/feed"]  # the first hop only


def test_a_redirect_to_a_private_address_is_refused_by_the_hooks(local_server, public):
    start = _redirecting_server(local_server)
    with httpx.Client(follow_redirects=True, event_hooks=guarded_client_hooks(resolver=public)) as client:
        with pytest.raises(SourceError, match=r"127\.0\.0\.1 is loopback"):
            client.get(start)
    assert [path for path, _ in local_server.requests] == ["/feed"]


def test_the_guarded_transport_lets_public_requests_through(public):
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, content=b"<rss/>")

    transport = GuardedTransport(httpx.MockTransport(answer), resolver=public)
    with PoliteClient(user_agent="AcademicHub-tests", transport=transport) as client:
        assert client.get("https://feeds.example.org/nature.rss").content == b"<rss/>"
    assert seen == ["https://feeds.example.org/nature.rss"]
