"""Fetching user-supplied URLs without SSRF. Name resolution is injected (no DNS is asked), except
where a real local server on 127.0.0.1 must be refused. Connections go through a LoopbackNetwork
(tests/localserver.py): it records the address the client connects to and delivers it to the local
server, so a name the injected resolver calls public can be fetched, pinned and redirected."""

from __future__ import annotations

import socket

import httpx
import pytest
from localserver import LoopbackNetwork, Reply

from academichub.errors import SourceError
from academichub.sources.http import PoliteClient
from academichub.sources.safe_url import GuardedTransport, check_public_url

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
        ("javascript:alert(document.cookie)", "scheme 'javascript' is not http or https"),
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


def _port(local_server) -> int:
    return int(local_server.url("").rsplit(":", 1)[1])


def _redirecting_server(local_server) -> str:
    """A server reached as "localhost" (which the injected resolver calls public) that redirects
    to itself by address: the second hop must be refused."""
    target = local_server.url("/internal")
    local_server.route("/feed", responses=[Reply(302, headers={"Location": target})])
    local_server.route("/internal", body=b"secret")
    return local_server.url("/feed").replace("127.0.0.1", "localhost")


def test_a_redirect_to_a_private_address_is_refused_by_the_transport(local_server, public):
    start = _redirecting_server(local_server)
    network = LoopbackNetwork(_port(local_server))
    transport = GuardedTransport(resolver=public, network=network)
    with PoliteClient(user_agent="AcademicHub-tests", retries=0, transport=transport) as client:
        with pytest.raises(SourceError, match=r"refused: 127\.0\.0\.1 is loopback") as caught:
            client.get(start)
    assert caught.value.url.endswith("/internal")
    assert [path for path, _ in local_server.requests] == ["/feed"]  # the first hop only
    assert network.connects == [(PUBLIC_V4, _port(local_server))]


def test_the_guarded_transport_connects_to_the_address_it_checked(local_server, public):
    local_server.route("/nature.rss", body=b"<rss/>")
    network = LoopbackNetwork(_port(local_server))
    url = f"http://feeds.example.org:{_port(local_server)}/nature.rss"
    with PoliteClient(user_agent="AcademicHub-tests", transport=GuardedTransport(resolver=public, network=network)) as client:
        assert client.get(url).content == b"<rss/>"
    assert network.connects == [(PUBLIC_V4, _port(local_server))]  # the address, not the name
    assert public.asked == ["feeds.example.org"]  # resolved once
    [(path, headers)] = local_server.requests
    assert (path, headers["Host"]) == ("/nature.rss", f"feeds.example.org:{_port(local_server)}")  # Host is the name


def test_tls_is_still_spoken_to_the_name(public, local_server):
    network = LoopbackNetwork(_port(local_server))
    with PoliteClient(user_agent="AcademicHub-tests", retries=0, transport=GuardedTransport(resolver=public, network=network)) as client:
        with pytest.raises(SourceError, match="no TLS in tests"):
            client.get("https://feeds.example.org/nature.rss")
    assert network.connects == [(PUBLIC_V4, 443)]
    assert network.tls_names == ["feeds.example.org"]  # SNI and certificate check: the name


def test_every_checked_address_is_tried_in_turn(public, local_server):
    network = LoopbackNetwork(_port(local_server), reachable=False)
    with PoliteClient(user_agent="AcademicHub-tests", retries=0, transport=GuardedTransport(resolver=public, network=network)) as client:
        with pytest.raises(SourceError, match="ConnectError"):
            client.get("http://feeds.example.org/nature.rss")
    assert network.connects == [(PUBLIC_V4, 80), (PUBLIC_V6, 80)]


def rebinding_resolver():
    """A DNS server playing the rebinding trick: public for the first lookup of a name, 127.0.0.1 after."""
    asked: list[str] = []

    def resolve(host, port, family=0, type=0, proto=0, flags=0):
        asked.append(host)
        address = PUBLIC_V4 if len(asked) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    resolve.asked = asked
    return resolve


class _CheckThenConnectByName(httpx.BaseTransport):
    """The guard as it was before pinning: check the URL, then let httpx resolve the name again."""

    def __init__(self, resolver):
        self._inner, self._resolver = httpx.HTTPTransport(), resolver

    def handle_request(self, request):
        check_public_url(str(request.url), resolver=self._resolver)
        return self._inner.handle_request(request)

    def close(self):
        self._inner.close()


def test_dns_rebinding_cannot_reach_loopback(local_server):
    # "localhost" is public at the check and 127.0.0.1 when connecting (the system resolver).
    local_server.route("/admin", body=b"internal")
    url = local_server.url("/admin").replace("127.0.0.1", "localhost")
    old = PoliteClient(user_agent="AcademicHub-tests", retries=0, transport=_CheckThenConnectByName(rebinding_resolver()))
    with old:
        assert old.get(url).content == b"internal"  # the old guard was walked past
    assert [path for path, _ in local_server.requests] == ["/admin"]
    local_server.requests.clear()

    resolver = rebinding_resolver()
    network = LoopbackNetwork(_port(local_server), reachable=False)  # the public address is not here
    with PoliteClient(user_agent="AcademicHub-tests", retries=0, transport=GuardedTransport(resolver=resolver, network=network)) as client:
        with pytest.raises(SourceError, match="ConnectError"):
            client.get(url)
    assert resolver.asked == ["localhost"]  # one lookup: there is no second answer to rebind
    assert network.connects == [(PUBLIC_V4, _port(local_server))]  # the checked address, never 127.0.0.1
    assert local_server.requests == []


def test_allow_private_skips_the_address_check_but_not_the_form(public):
    assert check_public_url("http://127.0.0.1:8080/feed", allow_private=True, resolver=public) == "http://127.0.0.1:8080/feed"
    assert public.asked == []
    for url, reason in [("file:///etc/passwd", "scheme 'file'"), ("javascript:alert(1)", "scheme 'javascript'"),
                        ("http://user:pw@10.0.0.1/", "user name or password")]:
        with pytest.raises(SourceError, match=reason):
            check_public_url(url, allow_private=True, resolver=public)
