"""The first run: while no source is configured, the feed page offers one form — arXiv categories
(the taxonomy's short list, by group), journals from the venue catalog, and a first radar (name
and interest). Posting it follows them all and creates the radar (app.following.first_run), then
opens the feed ranked by that radar."""

from __future__ import annotations

from typing import Annotated, Any, Callable
from urllib.parse import urlencode

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import RedirectResponse

from .. import taxonomy
from ..app.following import first_run
from ..errors import AcademicHubError
from ..settings import Settings
from ..venues import load_venues
from .identity import require_admin, viewer_user_id
from .sources_page import MAX_CODES, same_origin

MAX_TEXT = 4000


def welcome_context(settings: Settings, *, form: dict | None = None, error: Any = None) -> dict:
    """What `_welcome.html` needs: the featured categories by group, the journals, the form's
    values (after a refused post) and the error."""
    groups = [
        {"group": group, "categories": [taxonomy.categories()[code] for code in group.featured if code in taxonomy.categories()]}
        for group in taxonomy.groups()
    ]
    venues = sorted(load_venues(settings.data_dir).values(), key=lambda v: (v.fields[0] if v.fields else "", v.name))
    form = form or {}
    return {
        "groups": [g for g in groups if g["categories"]],
        "venues": venues,
        "form": {"name": form.get("name", ""), "interest": form.get("interest", ""),
                 "categories": set(form.get("categories", [])), "venues": set(form.get("venues", []))},
        "error": error,
    }


def register(app: FastAPI, engine, settings: Settings, render: Callable) -> None:
    @app.post("/welcome", include_in_schema=False)
    def welcome_form(
        request: Request,
        name: Annotated[str, Form(max_length=500)] = "",
        interest: Annotated[str, Form(max_length=MAX_TEXT)] = "",
        category: Annotated[list[str], Form(max_length=64)] = [],  # noqa: B006 - FastAPI copies defaults
        venue: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006
    ):
        if not same_origin(request):
            raise HTTPException(403, "cross-site form")
        require_admin(request)  # it follows sources, which every user shares
        owner = viewer_user_id(request)
        form = {"name": name, "interest": interest, "categories": category, "venues": venue}
        try:
            if len(category) > MAX_CODES or len(venue) > MAX_CODES:
                raise AcademicHubError.translatable("at most {limit} categories and journals at once", limit=MAX_CODES)
            done = first_run(engine, load_venues(settings.data_dir), categories=category, venues=venue,
                             radar_name=name, interest=interest, now=request.app.state.hub.now(),
                             user_id=owner)
        except AcademicHubError as exc:
            return render(request, "welcome.html", {"welcome": welcome_context(settings, form=form, error=exc)},
                          status_code=400)
        return RedirectResponse("/?" + urlencode({"radar": done.radar}), status_code=303)
