"""What the config may ask of enrichment: is a segment name free, is a rule valid.

`shopcrm.config` checks each `segments:` entry through these two functions, so a bad rule is
refused by `config check` with its key path, without the config knowing how rules are parsed
or which segment names are built in.
"""

from __future__ import annotations

from shopcrm.enrich.rules import RuleError, parse_rule
from shopcrm.enrich.segments import reserved_name_problem


def segment_name_problem(name: str) -> str | None:
    """Why a user segment may not be called `name` (a built-in name, say), or None."""
    return reserved_name_problem(name)


def rule_problem(rule: str) -> str | None:
    """Why `rule` is not a valid segment rule, in words, or None."""
    try:
        parse_rule(rule)
    except RuleError as exc:
        return str(exc)
    return None
