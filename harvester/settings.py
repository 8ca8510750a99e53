"""The configuration: typed settings models and the YAML loader.

:func:`load_settings` reads the YAML file, substitutes ``${VAR}`` and ``${VAR:-default}`` from the
environment, validates the result into a frozen :class:`Settings` and applies
``$HARVESTER_DATABASE_URL``. Whatever goes wrong becomes one :class:`ConfigError`, whose ``str()`` is
the single line the operator contract promises::

    config/harvester.yaml: sources[1].schedule.every: 'often' is not a duration

Key paths are dotted keys and ``[i]`` indexes as they appear in the file; when several things are
wrong, the first in document order is reported and `` (and N more problems)`` appended.

Adding a source type is one model (subclass :class:`BaseSourceSettings`, ``type: Literal["..."]``)
and one entry in the :data:`SourceSettings` union; the error reporting follows by itself. Secret
values (API keys, tokens) are :class:`pydantic.SecretStr` fields: :meth:`Settings.secrets` finds
them for log redaction, and type errors about them describe the value without showing it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from harvester import __version__

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_USER_AGENT",
    "SOURCE_TYPES",
    "BaseSourceSettings",
    "ConfigError",
    "CrossrefSourceSettings",
    "DatabaseSettings",
    "HttpSettings",
    "LoggingSettings",
    "MergeSettings",
    "MetricsSettings",
    "OaiPmhSourceSettings",
    "ScheduleSettings",
    "ScopusSourceSettings",
    "Settings",
    "SourceSettings",
    "load_settings",
    "parse_duration",
]

#: The environment variable that overrides ``database.url``.
DATABASE_URL_ENV = "HARVESTER_DATABASE_URL"

DEFAULT_USER_AGENT = f"scholarly-harvester/{__version__} (+https://github.com/scholarly-harvester)"


class ConfigError(Exception):
    """An invalid configuration, as the one line an operator sees.

    ``str(error)`` is ``f"{file}: {key_path}: {problem}"``, or ``f"{file}: {problem}"`` when the
    problem has no key (YAML syntax, an unreadable or empty file), followed by
    `` (and N more problems)`` when ``more`` other problems were found.
    """

    file: str
    key_path: str | None
    problem: str
    more: int

    def __init__(self, file: str, key_path: str | None, problem: str, more: int = 0) -> None:
        super().__init__(file, key_path, problem, more)
        self.file = file
        self.key_path = key_path
        self.problem = problem
        self.more = more

    def __str__(self) -> str:
        parts = [self.file] if self.key_path is None else [self.file, self.key_path]
        line = ": ".join([*parts, self.problem])
        if self.more:
            line += f" (and {self.more} more problem{'s' if self.more > 1 else ''})"
        return _one_line(line)


# --- showing values in messages ---------------------------------------------------------------

_MAX_SHOWN = 60


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _show(value: object) -> str:
    """A scalar as the operator wrote it (strings quoted, escapes visible); containers by kind."""
    if isinstance(value, str):
        if len(value) > _MAX_SHOWN:
            value = value[: _MAX_SHOWN - 3] + "..."
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.date):  # also datetime
        return value.isoformat()
    return _kind(value)


def _kind(value: object) -> str:
    """What sort of value this is, without showing it."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    if isinstance(value, dt.datetime):
        return "a timestamp"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


# --- durations, dates, numbers ----------------------------------------------------------------

_DURATION = re.compile(r"([0-9]+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> dt.timedelta:
    """``"30s"``, ``"15m"``, ``"6h"``, ``"1d"``, ``"2w"``: a positive integer and one unit.

    Raises ``ValueError("'often' is not a duration")``. Compound forms (``"1h30m"``), fractions,
    signs, spaces and upper-case units are not durations.
    """
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{_show(text)} is not a duration")
    amount = int(match.group(1))
    if amount == 0:
        raise ValueError(f"{_show(text)} is not a positive duration")
    try:
        return dt.timedelta(**{_UNITS[match.group(2)]: amount})
    except OverflowError:
        raise ValueError(f"{_show(text)} is too long a duration") from None


def _to_duration(value: object) -> object:
    """Before-validator of duration fields: strings through :func:`parse_duration`."""
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, dt.timedelta):
        if value <= dt.timedelta(0):
            raise ValueError(f"{value} is not a positive duration")
        return value
    if value is None:
        return None  # fine where the field is optional; pydantic reports it elsewhere
    raise ValueError(f"expected a duration like '6h', got {_show(value)}")


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _to_date(value: object) -> object:
    """Before-validator of date fields: a YAML date or a ``YYYY-MM-DD`` string, nothing else."""
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected a date (YYYY-MM-DD), got {_show(value)}")


def _not_bool(expected: str) -> BeforeValidator:
    # Pydantic's lax mode reads true/false as 1/0; in a config that is always a mistake.
    def check(value: object) -> object:
        if isinstance(value, bool):
            raise ValueError(f"expected {expected}, got {_show(value)}")  # noqa: TRY004 (pydantic wants ValueError)
        return value

    return BeforeValidator(check)


_Float = Annotated[float, _not_bool("a number"), Field(allow_inf_nan=False)]
_Int = Annotated[int, _not_bool("an integer")]
_Duration = Annotated[dt.timedelta, BeforeValidator(_to_duration)]
_Date = Annotated[dt.date, BeforeValidator(_to_date)]


# --- the models -------------------------------------------------------------------------------


def _is_optional(annotation: object) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType) and type(None) in typing.get_args(
        annotation
    )


class _ConfigModel(BaseModel):
    """Shared behaviour of every settings model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        """``""`` in an optional field is "not set" (so ``${VAR:-}`` can leave it out); an empty
        section (``logging:`` with every line commented out) means its defaults."""
        if not isinstance(data, dict):
            return data
        cleaned = dict(data)
        for name, info in cls.model_fields.items():
            if name not in cleaned:
                continue
            value = cleaned[name]
            if value == "" and _is_optional(info.annotation):
                cleaned[name] = None
            elif (
                value is None
                and not info.is_required()
                and isinstance(info.annotation, type)
                and issubclass(info.annotation, BaseModel)
            ):
                del cleaned[name]
        return cleaned


class DatabaseSettings(_ConfigModel):
    """``database``: where the store lives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A SQLAlchemy URL, ``sqlite:///PATH`` or ``postgresql+psycopg://...``; a plain
    #: ``postgresql://`` is rewritten to the installed psycopg 3 driver.
    url: str = "sqlite:///harvester.db"
    #: SQLite: seconds a write waits for another process's write before failing.
    busy_timeout: Annotated[_Float, Field(gt=0)] = 60.0

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        try:
            url = make_url(value)
        except ArgumentError:
            shown = re.sub(r":[^:@/]*@", ":***@", value)
            raise ValueError(
                f"{_show(shown)} is not a database URL (use sqlite:///PATH or postgresql+psycopg://HOST/DB)"
            ) from None
        shown = url.render_as_string(hide_password=True)
        backend, _, driver = url.drivername.partition("+")
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"{_show(shown)} is not a sqlite or postgresql URL")
        allowed = ("", "pysqlite") if backend == "sqlite" else ("", "psycopg")
        if driver not in allowed:
            raise ValueError(
                f"{_show(shown)} uses the driver {driver!r}, which is not installed"
                f" (use {backend}:// or {backend}+{allowed[1]}://)"
            )
        if url.drivername == "postgresql":
            return "postgresql+psycopg" + value[len("postgresql") :]
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "url", make_url(self.url).render_as_string(hide_password=True)

    @property
    def password(self) -> str | None:
        """The password in the URL, if any."""
        return make_url(self.url).password


class LoggingSettings(_ConfigModel):
    """``logging``: level and line format of the log on stderr."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "console"] = "json"

    @field_validator("level", mode="before")
    @classmethod
    def _level_any_case(cls, value: object) -> object:
        if isinstance(value, str) and value.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"):
            return value.upper()
        return value

    @field_validator("format", mode="before")
    @classmethod
    def _format_any_case(cls, value: object) -> object:
        if isinstance(value, str) and value.lower() in ("json", "console"):
            return value.lower()
        return value


class HttpSettings(_ConfigModel):
    """``http``: how every source talks to its server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_agent: str = DEFAULT_USER_AGENT
    #: Seconds, for connecting and for each read.
    timeout: Annotated[_Float, Field(gt=0)] = 30.0
    #: Seconds, the deadline for one whole request including its body.
    total_timeout: Annotated[_Float, Field(gt=0)] = 300.0
    #: Retries of a transient failure after the first attempt.
    retries: Annotated[_Int, Field(ge=0)] = 5
    #: Base of the exponential backoff, seconds.
    backoff: Annotated[_Float, Field(ge=0)] = 1.0
    #: Ceiling of one backoff sleep, seconds.
    backoff_max: Annotated[_Float, Field(ge=0)] = 60.0
    #: A Retry-After longer than this (seconds) fails the run instead of sleeping.
    max_retry_after: Annotated[_Float, Field(ge=0)] = 900.0
    max_response_bytes: Annotated[_Int, Field(gt=0)] = 100_000_000

    @field_validator("user_agent")
    @classmethod
    def _check_user_agent(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if any(ord(char) < 32 or ord(char) == 127 for char in value):
            raise ValueError("must not contain control characters or line breaks")
        return value


class MergeSettings(_ConfigModel):
    """``merge``: which source wins a field when several have it, and which records are one work."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Source names, most trusted first (checked against ``sources`` by :class:`Settings`).
    precedence: tuple[str, ...] = ()
    #: Let a record without a DOI join a work by its title, year and authors (see
    #: :mod:`harvester.identity`). Off by default; run ``harvester reprocess`` after
    #: turning it on so that the records already stored are matched too.
    match_without_doi: bool = False


class ScheduleSettings(_ConfigModel):
    """``schedule`` of a source: ``{every: 6h}`` or ``{cron: "0 3 * * *"}`` (UTC)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every: _Duration | None = None
    cron: str | None = None

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronTrigger.from_crontab(value, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"{_show(value)} is not a valid cron expression: {exc}") from None
            # APScheduler 3 counts weekdays from 0 = Monday, cron from 0 = Sunday: "1-5" would run
            # Tuesday to Saturday. Names mean the same to both. And it silently drops "#n".
            day_of_week = value.split()[4]
            if "#" in day_of_week:
                raise ValueError(f"{_show(value)} is not a valid cron expression: '#' is not supported")
            if re.search(r"[0-9]", day_of_week):
                raise ValueError(
                    f"{_show(value)} is not a valid cron expression: "
                    "write the day of the week as names (mon-fri, sun), not numbers"
                )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleSettings:
        if self.every is not None and self.cron is not None:
            raise ValueError("give either 'every' or 'cron', not both")
        if self.every is None and self.cron is None:
            raise ValueError("give 'every' or 'cron'")
        return self

    def cron_trigger(self) -> Any:
        """The APScheduler ``CronTrigger`` (UTC) of a ``cron`` schedule, else ``None``."""
        return None if self.cron is None else CronTrigger.from_crontab(self.cron, timezone="UTC")


_DAILY = ScheduleSettings(every=dt.timedelta(days=1))


class BaseSourceSettings(_ConfigModel):
    """What every source has, whatever its type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")]
    enabled: bool = True
    #: Inclusive lower bound of the first harvest, on the source's own change date.
    since: _Date | None = None
    schedule: ScheduleSettings = _DAILY
    #: Requests per second, a ceiling the server's rate-limit headers can only lower.
    rate_limit: Annotated[_Float, Field(gt=0)] | None = None


def _check_http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{_show(value)} is not an http(s) URL")
    return value


class OaiPmhSourceSettings(BaseSourceSettings):
    """``type: oai-pmh``: an OAI-PMH repository (Pure, DSpace, EPrints, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["oai-pmh"]
    #: The OAI-PMH base URL.
    url: Annotated[str, AfterValidator(_check_http_url)]
    metadata_prefix: Annotated[str, Field(min_length=1)] = "oai_dc"
    set: str | None = None
    #: The size of the date windows a first harvest is cut into.
    window: _Duration = dt.timedelta(days=30)
    #: Consecutive empty pages (with a resumption token) before the run gives up.
    max_empty_pages: Annotated[_Int, Field(ge=1)] = 10


#: Crossref ``/works`` filter names (api.crossref.org "Filter Names"; the REST API's own list).
CROSSREF_FILTERS = frozenset(
    [
        "alternative-id",
        "archive",
        "article-number",
        "assertion",
        "assertion-group",
        "award.funder",
        "award.number",
        "category-name",
        "clinical-trial-number",
        "container-title",
        "content-domain",
        "directory",
        "doi",
        "from-accepted-date",
        "from-approved-date",
        "from-awarded-date",
        "from-created-date",
        "from-event-end-date",
        "from-event-start-date",
        "from-issued-date",
        "from-online-pub-date",
        "from-posted-date",
        "from-print-pub-date",
        "from-pub-date",
        "full-text.application",
        "full-text.type",
        "full-text.version",
        "funder",
        "funder-doi-asserted-by",
        "group-title",
        "has-abstract",
        "has-affiliation",
        "has-archive",
        "has-assertion",
        "has-assertion-type",
        "has-authenticated-orcid",
        "has-clinical-trial-number",
        "has-content-domain",
        "has-domain-restriction",
        "has-event",
        "has-full-text",
        "has-funder",
        "has-funder-doi",
        "has-license",
        "has-orcid",
        "has-references",
        "has-relation",
        "has-ror-id",
        "has-update",
        "has-update-policy",
        "is-update",
        "isbn",
        "issn",
        "license.delay",
        "license.url",
        "license.version",
        "location",
        "member",
        "orcid",
        "prefix",
        "reference-visibility",
        "relation.object",
        "relation.object-type",
        "relation.type",
        "ror-id",
        "type",
        "type-name",
        "until-accepted-date",
        "until-approved-date",
        "until-awarded-date",
        "until-created-date",
        "until-event-end-date",
        "until-event-start-date",
        "until-issued-date",
        "until-online-pub-date",
        "until-posted-date",
        "until-print-pub-date",
        "until-pub-date",
        "updates",
    ]
)
#: The date-window filters the harvester sets itself (a config that sets them is an error).
CROSSREF_WINDOW_FILTERS = frozenset(
    {
        "from-index-date",
        "until-index-date",
        "from-update-date",
        "until-update-date",
        "from-deposit-date",
        "until-deposit-date",
    }
)

_FilterValue = Union[str, int, bool]  # noqa: UP007


def _filter_scalar(value: object) -> str | int | bool | None:
    """A filter value as Crossref reads it; a YAML date (``2020-01-01`` unquoted) becomes ISO text."""
    if isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return None


def _check_crossref_filters(value: object) -> dict[str, Any]:
    """Names known, values scalars or lists of scalars; each problem at its own key.

    Checked by hand rather than by a pydantic union, whose error locations name the union
    branch (``filter.type.str``) instead of the operator's key.
    """
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {_kind(value)}")  # noqa: TRY004 - pydantic reports ValueError
    problems: list[tuple[tuple[str | int, ...], str]] = []
    clean: dict[str, Any] = {}
    for name, item in value.items():
        if isinstance(item, list):
            values = [_filter_scalar(v) for v in item]
            for i, v in enumerate(values):
                if v is None:
                    problems.append(
                        ((str(name), i), f"expected a string, number or true/false, got {_kind(item[i])}")
                    )
            clean[str(name)] = values
        else:
            scalar = _filter_scalar(item)
            if scalar is None:
                problems.append(
                    ((str(name),), f"expected a string, number, true/false or a list, got {_kind(item)}")
                )
            clean[str(name)] = scalar
        if name in CROSSREF_WINDOW_FILTERS:
            problems.append(
                ((name,), "the harvester sets the date-window filters itself (use 'since' and 'date_field')")
            )
        elif name not in CROSSREF_FILTERS:
            problems.append(((name,), f"{_show(name)} is not a Crossref filter"))
        elif isinstance(item, list) and not item:
            problems.append(((name,), "an empty list filters nothing out; remove the filter or give values"))
    if problems:
        raise _Problems(problems)
    return clean


def _check_mailto(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise ValueError(f"{_show(value)} is not an e-mail address")
    return value


class CrossrefSourceSettings(BaseSourceSettings):
    """``type: crossref``: the Crossref REST API ``/works``, harvested by index-date (or update-date) days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["crossref"]
    #: The API base; tests point it at a local server.
    url: Annotated[str, AfterValidator(_check_http_url)] = "https://api.crossref.org"
    #: Contact address: sent as ``mailto=`` and in the User-Agent (Crossref's polite pool).
    mailto: Annotated[str, AfterValidator(_check_mailto)] | None = None
    #: Crossref filters, passed through: a list repeats the filter (Crossref reads that as OR).
    filter: Annotated[
        dict[str, _FilterValue | list[_FilterValue]], BeforeValidator(_check_crossref_filters)
    ] = Field(default_factory=dict)
    #: Which change date the day windows use: ``index`` (every reindex, incl. citation counts) or ``update``.
    date_field: Literal["index", "update"] = "index"
    #: Items per page (Crossref allows at most 1000).
    rows: Annotated[_Int, Field(ge=1, le=1000)] = 1000
    #: Windows with more results than this are split in two (so a crash costs little).
    max_window_results: Annotated[_Int, Field(ge=1)] = 20_000
    #: Metadata Plus subscribers: sent as ``Crossref-Plus-API-Token: Bearer ...``.
    plus_token: SecretStr | None = None


class ScopusSourceSettings(BaseSourceSettings):
    """``type: scopus``: the Scopus Search API, by load-date day windows ANDed to ``query``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["scopus"]
    #: The API base; tests point it at a local server.
    url: Annotated[str, AfterValidator(_check_http_url)] = "https://api.elsevier.com"
    #: The API key (sent only in the ``X-ELS-APIKey`` header).
    api_key: SecretStr | None = None
    #: Several keys: used in turn, the next one when a key's weekly quota is exhausted.
    api_keys: tuple[SecretStr, ...] = ()
    #: Institutional token (``X-ELS-Insttoken``), optional.
    inst_token: SecretStr | None = None
    #: A Scopus advanced search, e.g. ``AFFILORG("Example University")``.
    query: Annotated[str, Field(min_length=1)]
    #: COMPLETE gives every author, keywords and the abstract (25 per page); STANDARD 200 per page.
    view: Literal["STANDARD", "COMPLETE"] = "COMPLETE"
    #: Which load date the windows use: ``load`` (LOAD-DATE, follows reloads) or ``orig-load``
    #: (ORIG-LOAD-DATE, first accession).
    date_field: Literal["load", "orig-load"] = "load"
    #: The size of the date windows (each window is one query; a crash costs at most one).
    window: _Duration = dt.timedelta(days=30)
    #: Opt-in extra requests: ``subject_areas`` fetches ASJC subject areas (Abstract Retrieval API).
    enrich: tuple[Literal["subject_areas"], ...] = ()

    @model_validator(mode="after")
    def _one_key_at_least(self) -> ScopusSourceSettings:
        if self.enabled and self.api_key is None and not self.api_keys:
            raise _Problems([(("api_key",), "give 'api_key' or 'api_keys'")])
        return self

    def keys(self) -> tuple[str, ...]:
        """Every API key, ``api_key`` first, without duplicates or empty values."""
        values = [self.api_key, *self.api_keys] if self.api_key is not None else list(self.api_keys)
        seen: dict[str, None] = {}
        for value in values:
            if value is not None and value.get_secret_value():
                seen.setdefault(value.get_secret_value())
        return tuple(seen)


#: Every source type; a new type is one more member here.
SourceSettings = Annotated[
    Union[OaiPmhSourceSettings, CrossrefSourceSettings, ScopusSourceSettings],  # noqa: UP007
    Field(discriminator="type"),
]


def _discriminated(annotation: object) -> tuple[str, dict[str, type[BaseModel]]] | None:
    """For ``Annotated[Union[...], Field(discriminator=...)]``: the discriminator and tag -> model."""
    if typing.get_origin(annotation) is not Annotated:
        return None
    inner, *metadata = typing.get_args(annotation)
    field = next((m for m in metadata if isinstance(m, FieldInfo) and m.discriminator), None)
    if field is None or not isinstance(field.discriminator, str):
        return None
    members = typing.get_args(inner) if typing.get_origin(inner) in (Union, types.UnionType) else (inner,)
    tags: dict[str, type[BaseModel]] = {}
    for member in members:
        for tag in typing.get_args(member.model_fields[field.discriminator].annotation):
            tags[tag] = member
    return field.discriminator, tags


def _source_types() -> tuple[str, ...]:
    union = _discriminated(SourceSettings)
    if union is None:
        raise TypeError("SourceSettings must be a discriminated union")
    return tuple(union[1])


#: The known ``type`` values of a source.
SOURCE_TYPES: tuple[str, ...] = _source_types()


class _Problems(ValueError):
    """Problems found across fields, each with the key path it belongs to (relative to the model
    that raises it). :func:`load_settings` reports each at its own key."""

    def __init__(self, problems: Sequence[tuple[tuple[str | int, ...], str]]) -> None:
        super().__init__("; ".join(f"{_format_loc(loc)}: {problem}" for loc, problem in problems))
        self.problems = tuple(problems)


def _format_loc(loc: Sequence[object]) -> str:
    path = ""
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) and not isinstance(part, bool) else _key(path, part)
    return path


class MetricsSettings(_ConfigModel):
    """``metrics``: the Prometheus ``/metrics`` and ``/healthz`` endpoint of ``harvester run``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: Annotated[_Int, Field(ge=1, le=65535)] = 9464
    host: Annotated[str, Field(min_length=1)] = "0.0.0.0"  # noqa: S104 - a service port, by design


class Settings(_ConfigModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Opt-in: serve metrics and health while the daemon runs.
    metrics: MetricsSettings | None = None

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    merge: MergeSettings = Field(default_factory=MergeSettings)
    sources: tuple[SourceSettings, ...]

    @field_validator("sources")
    @classmethod
    def _some_sources(cls, value: tuple[SourceSettings, ...]) -> tuple[SourceSettings, ...]:
        if not value:
            raise ValueError("no sources configured")
        return value

    @model_validator(mode="after")
    def _check_names(self) -> Settings:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        first: dict[str, int] = {}
        for i, source in enumerate(self.sources):
            if source.name in first:
                problems.append(
                    (
                        ("sources", i, "name"),
                        f"duplicate source name {_show(source.name)} (also sources[{first[source.name]}])",
                    )
                )
            else:
                first[source.name] = i
        listed: dict[str, int] = {}
        for i, name in enumerate(self.merge.precedence):
            loc: tuple[str | int, ...] = ("merge", "precedence", i)
            if name not in first:
                problems.append((loc, f"unknown source {_show(name)}"))
            elif name in listed:
                problems.append(
                    (loc, f"duplicate name {_show(name)} (also merge.precedence[{listed[name]}])")
                )
            else:
                listed[name] = i
        if problems:
            raise _Problems(problems)
        return self

    def enabled_sources(self) -> tuple[SourceSettings, ...]:
        """The sources without ``enabled: false``, in file order."""
        return tuple(source for source in self.sources if source.enabled)

    def source(self, name: str) -> SourceSettings:
        """The source called ``name``; ``KeyError`` if there is none."""
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value in the configuration, longest first, for redaction in logs: every
        non-empty :class:`~pydantic.SecretStr` field and the password of the database URL."""
        found = {value for value in _secret_values(self) if value}
        password = self.database.password
        if password:
            found.add(password)
        return tuple(sorted(found, key=lambda value: (-len(value), value)))


def _secret_values(value: object) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secret_values(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _secret_values(item)


# --- paths ------------------------------------------------------------------------------------

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(path: str, key: object) -> str:
    """``path`` extended by the mapping key ``key``."""
    segment = key if isinstance(key, str) and _PLAIN_KEY.fullmatch(key) else _show(key)
    return f"{path}.{segment}" if path else str(segment)


def _unwrap(annotation: object) -> object:
    """``Optional[X]`` and ``Annotated[X, ...]`` -> ``X``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _field_annotation(annotation: object, part: str | int) -> object:
    """The annotation one step down ``part`` (keeping a discriminated union's ``Annotated``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
        info = annotation.model_fields.get(part)
        if info is None:
            return None
        # model_fields keeps the type but moves Annotated metadata into the FieldInfo.
        return info.annotation if info.discriminator is None else Annotated[info.annotation, info]
    if typing.get_origin(annotation) in (tuple, list) and isinstance(part, int):
        args = typing.get_args(annotation)
        return args[0] if args else None
    return None


def _locate(
    root: type[BaseModel], data: object, loc: Sequence[object]
) -> tuple[str, tuple[int, ...], object]:
    """Follow a pydantic ``loc`` through the models and the input data.

    Returns the key path as the operator wrote it (without the tags pydantic inserts for
    discriminated unions), a sort key in document order, and the annotation of the field there
    (``None`` where unknown).
    """
    annotation: object = root
    node: object = data
    path = ""
    order: list[int] = []
    for part in loc:
        union = _discriminated(annotation)
        if union is not None and isinstance(part, str) and part in union[1]:
            annotation = union[1][part]
            continue
        annotation = _unwrap(annotation)
        if isinstance(node, Mapping):
            keys = list(node)
            index = keys.index(part) if part in keys else len(keys)
            order.append(index)
            path = _key(path, keys[index] if index < len(keys) else part)  # as written: true, not 1
            node = node.get(part)
        elif isinstance(node, list | tuple) and isinstance(part, int):
            order.append(part)
            path = f"{path}[{part}]"
            node = node[part] if 0 <= part < len(node) else None
        else:
            order.append(0)
            path = f"{path}[{part}]" if isinstance(part, int) else _key(path, part)
            node = None
        annotation = _field_annotation(annotation, part) if isinstance(part, str | int) else None
    return path, tuple(order), annotation


# --- pydantic errors in plain words -----------------------------------------------------------

_EXPECTED = {
    "a mapping": ("model_type", "model_attributes_type", "dict_type", "mapping_type"),
    "a list": ("tuple_type", "list_type", "sequence_type", "iterable_type"),
    "a string": ("string_type", "string_sub_type", "string_unicode"),
    "an integer": ("int_type", "int_parsing", "int_from_float", "int_parsing_size"),
    "a number": ("float_type", "float_parsing"),
    "a finite number": ("finite_number",),
    "true or false": ("bool_type", "bool_parsing"),
    "a date (YYYY-MM-DD)": (
        "date_type",
        "date_parsing",
        "date_from_datetime_inexact",
        "date_from_datetime_parsing",
    ),
    "a duration like '6h'": ("timedelta_type", "timedelta_parsing"),
}
_EXPECTED_BY_TYPE = {kind: expected for expected, kinds in _EXPECTED.items() for kind in kinds}
_CONTAINERS = ("a mapping", "a list")
_BOUNDS = {
    "greater_than": ("gt", "must be greater than {}"),
    "greater_than_equal": ("ge", "must be at least {}"),
    "less_than": ("lt", "must be less than {}"),
    "less_than_equal": ("le", "must be at most {}"),
}


def _problem(error: Mapping[str, Any], path: str, annotation: object) -> str:
    """One pydantic error as plain words (without the key path)."""
    kind = error["type"]
    value = error.get("input")
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    secret = _unwrap(annotation) is SecretStr
    shown = _kind(value) if secret else _show(value)
    if kind in ("extra_forbidden", "invalid_key"):
        return "unknown key"
    if kind == "missing":
        return "no sources configured" if path == "sources" else "required key is missing"
    if kind == "tuple_type" and path == "sources" and value is None:
        return "no sources configured"
    if kind in _EXPECTED_BY_TYPE:
        expected = _EXPECTED_BY_TYPE[kind]
        return f"expected {expected}, got {_kind(value) if expected in _CONTAINERS else shown}"
    if kind in _BOUNDS:
        bound, text = _BOUNDS[kind]
        return f"{text.format(_show(ctx.get(bound)))}, got {shown}"
    if kind == "string_pattern_mismatch":
        return f"{shown} must match {str(ctx.get('pattern', '')).removeprefix('^').removesuffix('$')}"
    if kind == "string_too_short":
        minimum = ctx.get("min_length", 1)
        return "must not be empty" if minimum == 1 else f"must be at least {minimum} characters long"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind == "literal_error":
        allowed = typing.get_args(_unwrap(annotation)) or re.findall(r"'([^']*)'", str(ctx.get("expected")))
        return f"{shown} is not one of {', '.join(str(a) for a in allowed)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = value.get(ctx.get("discriminator", "'type'").strip("'")) if isinstance(value, Mapping) else None
        if kind == "union_tag_not_found":
            return "required key is missing"
        if not isinstance(tag, str):
            return f"expected a string, got {_show(tag)}"
        return f"unknown source type {_show(tag)} (known: {', '.join(SOURCE_TYPES)})"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "recursion_loop":
        return "refers to itself"
    return str(error.get("msg", kind))


def _problems(
    error: ValidationError, data: object, root: type[BaseModel] = Settings
) -> list[tuple[str | None, str]]:
    """Every problem in ``error`` as (key path, plain words), in document order."""
    found: list[tuple[tuple[int, ...], str | None, str]] = []
    for item in error.errors():
        loc: tuple[Any, ...] = tuple(item["loc"])
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, str((item.get("ctx") or {}).get("discriminator", "'type'")).strip("'"))
        cause = (item.get("ctx") or {}).get("error")
        if item["type"] == "value_error" and isinstance(cause, _Problems):
            for sub_loc, problem in cause.problems:
                path, order, _ = _locate(root, data, (*loc, *sub_loc))
                found.append((order, path or None, problem))
            continue
        path, order, annotation = _locate(root, data, loc)
        found.append((order, path or None, _problem(item, path, annotation)))
    found.sort(key=lambda entry: entry[0])  # stable: ties keep pydantic's order
    return [(path, problem) for _, path, problem in found]


# --- YAML -------------------------------------------------------------------------------------


class _YamlKeyError(Exception):
    """A structural problem at a key path while loading (duplicate key, recursive alias)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects duplicate keys in any mapping (PyYAML silently keeps the
    last one) and aliases that contain themselves."""

    def construct_document(self, node: yaml.Node) -> Any:
        self._check(node, "", set())
        return super().construct_document(node)

    def _check(self, node: yaml.Node, path: str, parents: set[int]) -> None:
        if id(node) in parents:
            raise _YamlKeyError(path, "an alias refers to a mapping or list that contains it")
        if isinstance(node, yaml.MappingNode):
            parents = parents | {id(node)}
            seen: set[object] = set()
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    self._check(value_node, path, parents)
                    continue
                key: object = None
                if isinstance(key_node, yaml.ScalarNode):
                    key = self.construct_object(key_node)
                    if key in seen:
                        raise _YamlKeyError(_key(path, key), "duplicate key")
                    seen.add(key)
                self._check(value_node, _key(path, key), parents)
        elif isinstance(node, yaml.SequenceNode):
            parents = parents | {id(node)}
            for i, item in enumerate(node.value):
                self._check(item, f"{path}[{i}]", parents)


def _read_yaml(file: str, path: str | os.PathLike[str]) -> dict[Any, Any]:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        reason = f"[Errno {exc.errno}] {exc.strerror}" if exc.errno is not None else str(exc)
        raise ConfigError(file, None, f"cannot read: {reason}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            file, None, f"cannot read: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except _YamlKeyError as exc:
        raise ConfigError(file, exc.path or None, exc.problem) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and exc.problem.startswith("but "):
            problem = f"{exc.context}, {exc.problem}"
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(file, None, f"{where}{problem}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ConfigError(
            file, None, f"line {line}, column {column}: unacceptable character #x{exc.character:04x}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, None, _one_line(str(exc))) from None
    except RecursionError:
        raise ConfigError(file, None, "the YAML is nested too deeply") from None
    if data is None:
        raise ConfigError(file, None, "the file is empty")
    if not isinstance(data, dict):
        raise ConfigError(file, None, f"expected a mapping at the top level, got {_kind(data)}")
    return data


# --- ${VAR} substitution ----------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute(value: object, env: Mapping[str, str], path: str, missing: list[tuple[str, str]]) -> object:
    """``value`` with ``${NAME}`` / ``${NAME:-default}`` replaced in every string scalar (keys are
    left alone). As in the shell, the default also applies when the variable is empty. Unset
    variables without a default are appended to ``missing`` as (key path, name)."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = env.get(name)
            if default is not None and not found:
                return default
            if found is None:
                missing.append((path, name))
                return ""
            return found

        return _VARIABLE.sub(replace, value)
    if isinstance(value, dict):
        return {key: _substitute(item, env, _key(path, key), missing) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, env, f"{path}[{i}]", missing) for i, item in enumerate(value)]
    return value


# --- loading ----------------------------------------------------------------------------------


def load_settings(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Settings:
    """Read, substitute and validate the config at ``path``; raise :class:`ConfigError`.

    ``env`` (default ``os.environ``) supplies ``${VAR}`` values and ``$HARVESTER_DATABASE_URL``,
    which, when set and non-empty, replaces ``database.url`` after the file itself validated.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    file = os.fspath(path)
    data = _read_yaml(file, path)

    missing: list[tuple[str, str]] = []
    data = typing.cast("dict[Any, Any]", _substitute(data, environ, "", missing))
    if missing:
        variable_path, name = missing[0]
        raise ConfigError(
            file, variable_path or None, f"environment variable {name} is not set", more=len(missing) - 1
        )

    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc, data)
        where, problem = problems[0]
        raise ConfigError(file, where, problem, more=len(problems) - 1) from None

    override = environ.get(DATABASE_URL_ENV)
    if override:
        try:
            database = DatabaseSettings(url=override)
        except ValidationError as exc:
            _, problem = _problems(exc, {"url": override}, DatabaseSettings)[0]
            raise ConfigError(file, "database.url", f"{problem} (from ${DATABASE_URL_ENV})") from None
        settings = settings.model_copy(update={"database": database})
    return settings
