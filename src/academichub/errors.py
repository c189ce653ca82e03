"""The one error hierarchy: everything AcademicHub raises on purpose derives from AcademicHubError,
so the CLI can print one clean line and exit non-zero instead of a traceback."""

from __future__ import annotations


class AcademicHubError(Exception):
    """Base class of every error AcademicHub raises on purpose.

    An error a person meets on a web page is made with `translatable(template, **params)`: its
    English text is the template filled in (what the CLI prints), and the web looks the template up
    in its zh/en catalogs (it is the message id) and fills in the same parameters, so a Chinese page
    says it in Chinese. `template` is None for the others, shown as they are."""

    template: str | None = None
    params: dict = {}

    @classmethod
    def translatable(cls, template: str, /, **params):
        """`template` is a str.format string and the catalogs' message id; keep it literal so the
        catalog test finds it."""
        error = cls(template.format(**params))
        error.template = template
        error.params = params
        return error

    def __reduce__(self):
        # Keyword-only constructors can't be re-called from args: rebuild from message and
        # attributes, so an error raised in a worker process arrives whole.
        return (_restore_error, (type(self), str(self), dict(self.__dict__)))


def _restore_error(cls: type, message: str, state: dict) -> AcademicHubError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigError(AcademicHubError):
    """A setting is missing or malformed."""


class StoreError(AcademicHubError):
    """The database cannot be opened, migrated or written."""


class SourceError(AcademicHubError):
    """An upstream could not be fetched or refused the request. Names the URL."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None):
        self.url = url
        self.status = status
        super().__init__(f"{url}: {message}" if url else message)


class ParseError(AcademicHubError):
    """A file or response is not what its format promises. Names the file or URL and line."""

    def __init__(self, message: str, *, location: str | None = None, line: int | None = None):
        self.location = location
        self.line = line
        where = location or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class FeedError(SourceError):
    """The upstream answered, but with an error document (arXiv's 'Bad archive' feed, an API error entry)."""


class NotFound(AcademicHubError):
    """What a request names (a radar, a paper) is not in the store: a 404 on the web."""
