"""The mails an account gets outside any digest: a password-reset link and an invitation, in zh
or en, as plain text (delivery/email.py builds and sends them). The strings live here, as the
digest's do: the web's gettext catalogs belong to a front end."""

from __future__ import annotations

from email.message import EmailMessage

from .email import MailSetup, build_notice

TEXTS = {
    "en": {
        "reset_subject": "AcademicHub: reset your password",
        "reset_body": (
            "Someone (we hope you) asked to reset the password of the AcademicHub account {email}.\n\n"
            "Open this link to choose a new password. It works once, for one hour, and logs every\n"
            "session of the account out:\n\n{link}\n\n"
            "If you did not ask for this, ignore this mail: your password stays as it is.\n"
        ),
        "invite_subject": "AcademicHub: you are invited",
        "invite_body": (
            "You are invited to an AcademicHub (a research radar) as {email}.\n\n"
            "Open this link to choose a password and create your account. It works once, for seven days:\n\n"
            "{link}\n\nIf you do not expect this invitation, ignore this mail.\n"
        ),
    },
    "zh": {
        "reset_subject": "AcademicHub：重置密码",
        "reset_body": (
            "有人（希望是你本人）请求重置 AcademicHub 账户 {email} 的密码。\n\n"
            "打开下面的链接设置新密码。链接只能使用一次，一小时内有效；重置后该账户的所有会话都会退出登录：\n\n"
            "{link}\n\n如果不是你发起的请求，请忽略这封邮件，你的密码不会改变。\n"
        ),
        "invite_subject": "AcademicHub：邀请你加入",
        "invite_body": (
            "你被邀请以 {email} 加入一个 AcademicHub（科研雷达）。\n\n"
            "打开下面的链接设置密码并创建账户。链接只能使用一次，七天内有效：\n\n"
            "{link}\n\n如果你没有预期收到这份邀请，请忽略这封邮件。\n"
        ),
    },
}


def _texts(lang: str | None) -> dict[str, str]:
    return TEXTS.get(lang or "", TEXTS["zh"])


def reset_message(*, to: str, link: str, lang: str | None, setup: MailSetup) -> EmailMessage:
    texts = _texts(lang)
    return build_notice(to=to, subject_line=texts["reset_subject"], text=texts["reset_body"].format(email=to, link=link),
                        setup=setup, kind="reset")


def invitation_message(*, to: str, link: str, lang: str | None, setup: MailSetup) -> EmailMessage:
    texts = _texts(lang)
    return build_notice(to=to, subject_line=texts["invite_subject"],
                        text=texts["invite_body"].format(email=to, link=link), setup=setup, kind="invitation")


__all__ = ["TEXTS", "invitation_message", "reset_message"]
