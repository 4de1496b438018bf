"""The ``incident.doc`` configuration: where each incident's collaborative doc comes from.

The service account key is not here: it is the file named by
``GOOGLE_APPLICATION_CREDENTIALS`` (never logged; ``check-config`` shows only whether it
is set). The template and the folder must be shared with the service account's e-mail
(the template as a reader, the folder as a writer).
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from router.core.strict import Strict

# Drive file ids: letters, digits, - and _ (the part of a doc URL after /d/).
_FILE_ID = re.compile(r"[A-Za-z0-9_-]{10,200}")


class DocConfig(Strict):
    """The ``incident.doc`` section."""

    template_document_id: str = Field(description="the Google Doc copied for each incident")
    folder_id: str = Field(description="the Drive folder (or shared drive folder) it goes in")
    # Also give "anyone with the link" read access; off: only the responders can open it.
    share_with_link: bool = False
    # Drive e-mails each responder the doc was shared with them.
    notify_by_email: bool = True
    name_template: str = Field(
        "{incident}: {title}", description="the copy's name; {incident} and {title}"
    )
    drive_api_url: str = "https://www.googleapis.com/drive/v3/"
    docs_api_url: str = "https://docs.googleapis.com/"
    # Overrides the key file's token_uri (a stand-in in tests, a private endpoint).
    token_uri: str | None = None
    timeout_seconds: float = Field(20.0, gt=0, le=120)

    @field_validator("template_document_id", "folder_id")
    @classmethod
    def _drive_id(cls, value: str) -> str:
        if not _FILE_ID.fullmatch(value):
            raise ValueError("must be a Drive id (the part of the URL after /d/ or /folders/)")
        return value

    @field_validator("drive_api_url", "docs_api_url", "token_uri")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local stand-in)")
        return value

    @field_validator("drive_api_url", "docs_api_url")
    @classmethod
    def _base(cls, value: str) -> str:
        # The client library appends method paths to it as they are.
        return value if value.endswith("/") else value + "/"

    @field_validator("name_template")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            value.format(incident="INC-1", title="t")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"may use only {{incident}} and {{title}} ({exc})") from exc
        return value
