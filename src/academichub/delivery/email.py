"""A digest as an e-mail, sent with the standard library's smtplib.

The message: multipart/alternative (plain text, then HTML), a Message-ID made before the send
(the delivery record keeps it), `List-Unsubscribe` (the signed one-click URL, and a mailto: to
`smtp_from` when set) and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).

The send runs MAIL and RCPT itself, then calls `before_commit` just before DATA: up to there a
failure means the server took nothing (safe to send again); from there until the server's reply
the outcome is unknown. A refusal the server states (4xx, 5xx) is MailRefused, to be retried;
a lost answer after DATA began is MailUnconfirmed, never retried (at most once)."""

from __future__ import annotations

import email.policy
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr

from ..errors import AcademicHubError
from ..settings import Settings
from .digest import Digest, render_html, render_text, subject

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
SMTP_TIMEOUT = 60.0


class MailError(AcademicHubError):
    """No usable mail set-up, or a send that failed before the server saw the message."""


class MailRefused(MailError):
    """The SMTP server said no (a 4xx or 5xx reply): nothing was accepted; may be sent again."""


class MailUnconfirmed(MailError):
    """The connection failed after the message's DATA began: it may or may not have been accepted."""


@dataclass(frozen=True, slots=True)
class MailSetup:
    host: str
    port: int
    security: str  # starttls | tls | none
    username: str | None
    password: str | None
    sender: str

    @property
    def where(self) -> str:
        return f"smtp://{self.host}:{self.port} ({self.security})"


def mail_setup(settings: Settings) -> MailSetup:
    """The SMTP settings, checked; MailError naming what is missing."""
    if not settings.smtp_host:
        raise MailError("no mail set-up: set smtp_host (ACADEMICHUB_SMTP_HOST) to send e-mail digests")
    security = settings.smtp_security
    password = settings.smtp_password.get_secret_value() if settings.smtp_password is not None else None
    if password and not settings.smtp_username:
        raise MailError("smtp_password is set without smtp_username")
    sender = settings.smtp_from or f"academichub@{settings.smtp_host}"
    if "@" not in parseaddr(sender)[1]:
        raise MailError(f"smtp_from {sender!r} is not an e-mail address")
    return MailSetup(settings.smtp_host, settings.smtp_port or DEFAULT_PORTS[security], security,
                     settings.smtp_username or None, password or None, sender)


def new_message_id(setup: MailSetup) -> str:
    domain = parseaddr(setup.sender)[1].rpartition("@")[2] or setup.host
    return make_msgid("digest", domain=domain)


def build_message(digest: Digest, *, to: str, setup: MailSetup, message_id: str,
                  unsubscribe_url: str | None) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject(digest)
    name, address = parseaddr(setup.sender)
    message["From"] = formataddr((name or "AcademicHub", address))
    message["To"] = to
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        targets = [f"<{unsubscribe_url}>"]
        if setup.sender and address:
            targets.append(f"<mailto:{address}?subject=unsubscribe>")
        message["List-Unsubscribe"] = ", ".join(targets)
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(render_text(digest))
    message.add_alternative(render_html(digest), subtype="html")
    return message


def build_notice(*, to: str, subject_line: str, text: str, setup: MailSetup, kind: str = "notice") -> EmailMessage:
    """A plain-text message about an account (a password-reset link, an invitation), not a digest:
    no List-Unsubscribe, since nobody subscribed to it."""
    message = EmailMessage()
    message["Subject"] = subject_line
    name, address = parseaddr(setup.sender)
    message["From"] = formataddr((name or "AcademicHub", address))
    message["To"] = to
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(kind, domain=address.rpartition("@")[2] or setup.host)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    return message


# Headers folded at SMTP's own line limit, not at 78: a List-Unsubscribe URL is one long token,
# which a 78-column fold would turn into RFC 2047 encoded words that no mail client reads as a URL.
# (The body parts are already encoded, at 78 columns, when they are set.)
WIRE_POLICY = email.policy.SMTP.clone(max_line_length=998)


def wire_bytes(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=WIRE_POLICY)


def _connect(setup: MailSetup) -> smtplib.SMTP:
    try:
        if setup.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(setup.host, setup.port, timeout=SMTP_TIMEOUT,
                                                    context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(setup.host, setup.port, timeout=SMTP_TIMEOUT)
        client.ehlo()
        if setup.security == "starttls":
            if not client.has_extn("starttls"):
                client.close()
                raise MailError(f"{setup.where}: the server offers no STARTTLS (set smtp_security to tls or none)")
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if setup.username:
            client.login(setup.username, setup.password or "")
    except smtplib.SMTPAuthenticationError as exc:
        raise MailRefused(f"{setup.where}: login refused ({exc.smtp_code})") from exc
    except smtplib.SMTPResponseException as exc:
        raise MailRefused(f"{setup.where}: {exc.smtp_code} {_said(exc.smtp_error)}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"{setup.where}: cannot connect: {exc}") from exc
    return client


def _said(reply) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def send_message(setup: MailSetup, message: EmailMessage, *, before_commit: Callable[[], bool] = lambda: True) -> str:
    """Send one message to its To; the server's reply to DATA. `before_commit` is called just
    before DATA; when it returns False nothing is sent (the caller lost its claim)."""
    recipient = parseaddr(str(message["To"]))[1]
    sender = parseaddr(setup.sender)[1]
    client = _connect(setup)
    try:
        try:
            code, reply = client.mail(sender)
            if code != 250:
                raise MailRefused(f"{setup.where}: MAIL FROM refused: {code} {_said(reply)}")
            code, reply = client.rcpt(recipient)
            if code not in (250, 251):
                raise MailRefused(f"{setup.where}: RCPT TO {recipient} refused: {code} {_said(reply)}")
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            raise MailError(f"{setup.where}: connection lost before the message was sent: {exc}") from exc
        if not before_commit():
            client.rset()
            raise MailError("the delivery was taken over by another worker; nothing sent")
        try:
            code, reply = client.data(wire_bytes(message))
        except smtplib.SMTPDataError as exc:
            raise MailRefused(f"{setup.where}: message refused: {exc.smtp_code} {_said(exc.smtp_error)}") from exc
        except (OSError, socket.timeout, smtplib.SMTPServerDisconnected) as exc:
            raise MailUnconfirmed(f"{setup.where}: connection lost while the server took the message "
                                  f"({message['Message-ID']}): {exc}") from exc
        if code != 250:  # smtplib returns the reply to the message's end without judging it
            raise MailRefused(f"{setup.where}: message refused: {code} {_said(reply)}")
        return f"{code} {_said(reply)}"
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


__all__ = ["MailError", "MailRefused", "MailSetup", "MailUnconfirmed", "build_message", "build_notice", "mail_setup", "new_message_id",
           "send_message"]
