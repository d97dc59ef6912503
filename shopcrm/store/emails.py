"""The identity key of an email address, written beside every email the store holds.

Rules (docs/enrichment.md "Identity"): trim surrounding whitespace and lower-case (Unicode
`str.lower`). A value that is empty or has no `@` is not an email: placeholders such as "none"
or "-" would otherwise merge strangers. Nothing else is rewritten: `+tags` and dots can be
distinct mailboxes on many providers, so `a+x@` and `a@` stay two people.
"""

from __future__ import annotations


def normalise_email(email: str | None) -> str | None:
    """The identity key of an email address, or None when it is not one."""
    if email is None:
        return None
    value = email.strip().lower()
    if not value or "@" not in value:
        return None
    return value
