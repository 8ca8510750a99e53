"""The config loader: typed settings, ${VAR} substitution and the one-line error contract."""

from __future__ import annotations

import datetime as dt
import pickle
import textwrap
from pathlib import Path
from typing import Literal

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from harvester import __version__
from harvester.settings import (
    SOURCE_TYPES,
    ConfigError,
    DatabaseSettings,
    HttpSettings,
    LoggingSettings,
    MergeSettings,
    OaiPmhSourceSettings,
    ScheduleSettings,
    Settings,
    load_settings,
    parse_duration,
)

CONFIGS = Path(__file__).parent / "data" / "configs"
FILE = "config/harvester.yaml"  # as operators give it; the tests run in a tmp directory

# One valid source; cases append keys to it or replace parts of it.
SOURCE = """\
sources:
  - name: pure
    type: oai-pmh
    url: https://research.example.edu/ws/oai
"""


@pytest.fixture
def write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a config to ``config/harvester.yaml`` in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()

    def write(text: str | bytes) -> str:
        target = tmp_path / FILE
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(textwrap.dedent(text), encoding="utf-8")
        return FILE

    return write


def error_of(path: str | Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={} if env is None else env)
    assert_one_plain_line(str(info.value))
    return info.value


def assert_one_plain_line(line: str) -> None:
    for leak in ("\n", "\r", "pydantic", "For further information", "Value error", "Input should"):
        assert leak not in line


# --- valid configs --------------------------------------------------------------------------------


def test_full_config_loads_with_the_right_types() -> None:
    settings = load_settings(CONFIGS / "full.yaml", env={"DB_PASSWORD": "s3cret"})

    assert settings.database.url == "postgresql+psycopg://harvester:s3cret@db.example.org/harvester"
    assert settings.logging == LoggingSettings(level="INFO", format="console")
    assert settings.http == HttpSettings(
        user_agent="acme-harvester/1.0 (mailto:ops@example.org)",
        timeout=30.0,
        total_timeout=120.5,
        retries=3,
        backoff=0.5,
        backoff_max=30.0,
        max_retry_after=600.0,
        max_response_bytes=50_000_000,
    )
    assert isinstance(settings.http.timeout, float)
    assert settings.merge == MergeSettings(precedence=("pure", "dspace"))

    pure, dspace, eprints = settings.sources
    assert isinstance(pure, OaiPmhSourceSettings)
    assert pure.type == "oai-pmh"
    assert pure.url == "https://research.example.edu/ws/oai"
    assert pure.metadata_prefix == "oai_dc"
    assert pure.set == "publications:all"
    assert pure.since == dt.date(2019, 1, 1)
    assert pure.schedule == ScheduleSettings(every=dt.timedelta(hours=6))
    assert pure.rate_limit == 2.0
    assert pure.window == dt.timedelta(days=30)
    assert pure.max_empty_pages == 10
    assert pure.enabled

    assert dspace.url == "https://dspace.example.edu/oai/request"
    assert dspace.set is None  # ${DSPACE_SET:-}: empty means not set
    assert dspace.since is None
    assert dspace.schedule == ScheduleSettings(cron="30 2 * * mon-fri")
    assert dspace.schedule.cron_trigger() is not None
    assert dspace.window == dt.timedelta(days=7)
    assert dspace.max_empty_pages == 3
    assert dspace.rate_limit is None

    assert not eprints.enabled
    assert eprints.schedule == ScheduleSettings(every=dt.timedelta(days=1))

    assert settings.enabled_sources() == (pure, dspace)
    assert settings.source("dspace") is dspace
    with pytest.raises(KeyError):
        settings.source("scopus")
    assert settings.secrets() == ("s3cret",)
    assert "s3cret" not in repr(settings)


def test_defaults() -> None:
    settings = load_settings(CONFIGS / "minimal.yaml", env={})
    assert settings.database.url == "sqlite:///harvester.db"
    assert settings.logging == LoggingSettings(level="INFO", format="json")
    assert settings.http.user_agent == (
        f"scholarly-harvester/{__version__} (+https://github.com/scholarly-harvester)"
    )
    assert (settings.http.timeout, settings.http.total_timeout) == (30.0, 300.0)
    assert (settings.http.retries, settings.http.backoff, settings.http.backoff_max) == (5, 1.0, 60.0)
    assert settings.http.max_retry_after == 900.0
    assert settings.http.max_response_bytes == 100_000_000
    assert settings.merge.precedence == ()
    (source,) = settings.sources
    assert source.schedule.every == dt.timedelta(days=1)
    assert source.schedule.cron is None
    assert source.schedule.cron_trigger() is None
    assert settings.secrets() == ()
    assert SOURCE_TYPES == ("oai-pmh", "crossref", "scopus")


def test_settings_are_frozen() -> None:
    settings = load_settings(CONFIGS / "minimal.yaml", env={})
    with pytest.raises(ValidationError):
        settings.http.timeout = 1.0  # type: ignore[misc]
    assert hash(settings) == hash(load_settings(CONFIGS / "minimal.yaml", env={}))


def test_empty_sections_mean_defaults(write) -> None:
    settings = load_settings(write("logging:\nhttp:\n" + SOURCE + "    schedule:\n"), env={})
    assert settings.logging == LoggingSettings()
    assert settings.sources[0].schedule.every == dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("level", "expected"),
    [("debug", "DEBUG"), ("Warning", "WARNING"), ("ERROR", "ERROR")],
)
def test_log_level_in_any_case(write, level: str, expected: str) -> None:
    assert load_settings(write(f"logging: {{level: {level}}}\n" + SOURCE), env={}).logging.level == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///harvester.db", "sqlite:///harvester.db"),
        ("sqlite:////var/lib/harvester/h.db", "sqlite:////var/lib/harvester/h.db"),
        ("sqlite://", "sqlite://"),
        ("postgresql://user@host/db", "postgresql+psycopg://user@host/db"),
        ("postgresql+psycopg://user:pw@host:5433/db", "postgresql+psycopg://user:pw@host:5433/db"),
    ],
)
def test_database_urls(url: str, expected: str) -> None:
    assert DatabaseSettings(url=url).url == expected


def test_path_object_and_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "pw")
    monkeypatch.delenv("HARVESTER_DATABASE_URL", raising=False)
    settings = load_settings(CONFIGS / "full.yaml")  # env defaults to os.environ
    assert settings.database.password == "pw"


# --- ${VAR} substitution --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${SET}", {"SET": "publications:all"}, "publications:all"),
        ("${SET:-fallback}", {"SET": "given"}, "given"),
        ("${SET:-fallback}", {}, "fallback"),
        ("${SET:-fallback}", {"SET": ""}, "fallback"),  # as in the shell: empty takes the default
        ("${SET:-}", {}, None),  # empty in an optional field: not set
        ("${SET}", {"SET": ""}, None),
        ("${HOST}:${PORT}", {"HOST": "h", "PORT": "8080"}, "h:8080"),
        ("a-${X}-${X:-y}-b", {"X": "x"}, "a-x-x-b"),
        ("$$HOME and $HOME", {"HOME": "/root"}, "$$HOME and $HOME"),  # only ${...} is special
        ("${not-a-name} ${1X}", {}, "${not-a-name} ${1X}"),
        ("${A}", {"A": "${B}", "B": "no"}, "${B}"),  # values are not substituted again
        ("${A:-x:-y}", {}, "x:-y"),
    ],
)
def test_substitution(write, value: str, env: dict[str, str], expected: str | None) -> None:
    config = write(SOURCE + f"    set: '{value}'\n")
    assert load_settings(config, env=env).sources[0].set == expected


def test_substitution_types_and_keys(write) -> None:
    config = write(
        """\
        http:
          timeout: ${TIMEOUT}
          retries: ${RETRIES:-2}
        sources:
          - name: ${NAME}
            type: oai-pmh
            url: https://${HOST}/oai
            enabled: ${ENABLED:-true}
            since: ${SINCE:-}
            rate_limit: ${RATE:-}
            schedule: {every: "${EVERY:-12h}"}
            metadata_prefix: "${literal}"
        """
    )
    env = {"TIMEOUT": "12.5", "NAME": "pure", "HOST": "example.org", "literal": "mods"}
    settings = load_settings(config, env=env)
    assert settings.http.timeout == 12.5
    assert settings.http.retries == 2
    (source,) = settings.sources
    assert (source.name, source.url, source.enabled) == ("pure", "https://example.org/oai", True)
    assert (source.since, source.rate_limit) == (None, None)
    assert source.schedule.every == dt.timedelta(hours=12)
    assert source.metadata_prefix == "mods"


def test_keys_are_not_substituted(write) -> None:
    assert str(error_of(write("${KEY}: 1\n" + SOURCE), {"KEY": "logging"})) == (
        f"{FILE}: '${{KEY}}': unknown key"
    )


def test_unset_variable_is_an_error_at_its_key(write) -> None:
    config = write(SOURCE + "    set: ${OAI_SET}\n")
    error = error_of(config)
    assert str(error) == f"{FILE}: sources[0].set: environment variable OAI_SET is not set"
    assert (error.file, error.key_path, error.problem, error.more) == (
        FILE,
        "sources[0].set",
        "environment variable OAI_SET is not set",
        0,
    )


def test_several_unset_variables(write) -> None:
    config = write(
        "database: {url: '${DB_URL}'}\n"
        + SOURCE.replace("research.example.edu", "${HOST}")
        + "    set: ${SET}\n"
    )
    assert str(error_of(config)) == (
        f"{FILE}: database.url: environment variable DB_URL is not set (and 2 more problems)"
    )


# --- $HARVESTER_DATABASE_URL ---------------------------------------------------------------------


def test_database_url_override(write) -> None:
    config = write("database: {url: 'sqlite:///file.db'}\n" + SOURCE)
    assert load_settings(config, env={}).database.url == "sqlite:///file.db"
    env = {"HARVESTER_DATABASE_URL": "postgresql://u:pw@db/h"}
    settings = load_settings(config, env=env)
    assert settings.database.url == "postgresql+psycopg://u:pw@db/h"
    assert settings.secrets() == ("pw",)
    assert load_settings(config, env={"HARVESTER_DATABASE_URL": ""}).database.url == "sqlite:///file.db"


def test_invalid_database_url_override(write) -> None:
    config = write(SOURCE)
    error = error_of(config, {"HARVESTER_DATABASE_URL": "mysql://u:pw@db/h"})
    assert str(error) == (
        f"{FILE}: database.url: 'mysql://u:***@db/h' is not a sqlite or postgresql URL"
        " (from $HARVESTER_DATABASE_URL)"
    )


def test_file_is_validated_before_the_override(write) -> None:
    config = write("database: {url: 'oracle://x'}\n" + SOURCE)
    error = error_of(config, {"HARVESTER_DATABASE_URL": "sqlite://"})
    assert str(error) == f"{FILE}: database.url: 'oracle://x' is not a sqlite or postgresql URL"


# --- malformed configs: the exact line an operator sees ---------------------------------------------

MALFORMED = [
    # unknown keys
    ("unknown top-level key", "databse: {url: 'sqlite://'}\n" + SOURCE, "databse: unknown key"),
    ("unknown nested key", SOURCE + "    sheduel: {every: 6h}\n", "sources[0].sheduel: unknown key"),
    (
        "unknown key in schedule",
        SOURCE + "    schedule: {evry: 6h}\n",
        "sources[0].schedule.evry: unknown key",
    ),
    ("unknown key in http", "http: {timout: 3}\n" + SOURCE, "http.timout: unknown key"),
    ("quoted odd key", "'my key': 1\n" + SOURCE, "'my key': unknown key"),
    ("non-string key", "1: 2\n" + SOURCE, "1: unknown key"),
    # wrong types
    ("number expected", "http: {timeout: abc}\n" + SOURCE, "http.timeout: expected a number, got 'abc'"),
    ("bool is not a number", "http: {timeout: true}\n" + SOURCE, "http.timeout: expected a number, got true"),
    ("infinity", "http: {timeout: .inf}\n" + SOURCE, "http.timeout: expected a finite number, got inf"),
    ("integer expected", "http: {retries: 2.5}\n" + SOURCE, "http.retries: expected an integer, got 2.5"),
    ("list expected", "sources: pure\n", "sources: expected a list, got a string"),
    ("list not mapping", "sources: {pure: {}}\n", "sources: expected a list, got a mapping"),
    ("mapping expected", "http: [1, 2]\n" + SOURCE, "http: expected a mapping, got a list"),
    ("source not a mapping", "sources: [pure]\n", "sources[0]: expected a mapping, got a string"),
    ("string expected", SOURCE + "    set: [a, b]\n", "sources[0].set: expected a string, got a list"),
    (
        "url not a string",
        SOURCE.replace("https://research.example.edu/ws/oai", "42"),
        "sources[0].url: expected a string, got 42",
    ),
    (
        "bool expected",
        SOURCE + "    enabled: maybe\n",
        "sources[0].enabled: expected true or false, got 'maybe'",
    ),
    (
        "precedence not a list",
        "merge: {precedence: pure}\n" + SOURCE,
        "merge.precedence: expected a list, got a string",
    ),
    # dates
    (
        "year is not a date",
        SOURCE + "    since: 2019\n",
        "sources[0].since: expected a date (YYYY-MM-DD), got 2019",
    ),
    (
        "impossible date",
        SOURCE + "    since: '2019-02-30'\n",
        "sources[0].since: expected a date (YYYY-MM-DD), got '2019-02-30'",
    ),
    (
        "timestamp is not a date",
        SOURCE + "    since: 2019-01-01 10:00:00\n",
        "sources[0].since: expected a date (YYYY-MM-DD), got 2019-01-01T10:00:00",
    ),
    # required and missing
    ("no sources key", "logging: {level: INFO}\n", "sources: no sources configured"),
    ("empty sources", "sources: []\n", "sources: no sources configured"),
    ("null sources", "sources:\n", "sources: no sources configured"),
    (
        "missing url",
        SOURCE.replace("    url: https://research.example.edu/ws/oai\n", ""),
        "sources[0].url: required key is missing",
    ),
    (
        "missing name",
        SOURCE.replace("  - name: pure\n    type", "  - type"),
        "sources[0].name: required key is missing",
    ),
    ("missing type", SOURCE.replace("    type: oai-pmh\n", ""), "sources[0].type: required key is missing"),
    # names and cross-references
    (
        "duplicate source names",
        SOURCE + "  - {name: dspace, type: oai-pmh, url: 'http://d.org'}\n"
        "  - {name: pure, type: oai-pmh, url: 'http://p.org'}\n",
        "sources[2].name: duplicate source name 'pure' (also sources[0])",
    ),
    (
        "unknown precedence name",
        "merge: {precedence: [pure, foo]}\n" + SOURCE,
        "merge.precedence[1]: unknown source 'foo'",
    ),
    (
        "duplicate precedence name",
        "merge: {precedence: [pure, pure]}\n" + SOURCE,
        "merge.precedence[1]: duplicate name 'pure' (also merge.precedence[0])",
    ),
    (
        "bad name",
        SOURCE.replace("name: pure", "name: My Source"),
        "sources[0].name: 'My Source' must match [a-z0-9_-]+",
    ),
    (
        "unknown type",
        SOURCE.replace("oai-pmh", "foo"),
        "sources[0].type: unknown source type 'foo' (known: oai-pmh, crossref, scopus)",
    ),
    (
        "type not a string",
        SOURCE.replace("oai-pmh", "[oai-pmh]"),
        "sources[0].type: expected a string, got a list",
    ),
    # durations and schedules
    (
        "bad duration",
        SOURCE + "    schedule: {every: often}\n",
        "sources[0].schedule.every: 'often' is not a duration",
    ),
    ("compound duration", SOURCE + "    window: 1h30m\n", "sources[0].window: '1h30m' is not a duration"),
    (
        "zero duration",
        SOURCE + "    schedule: {every: 0s}\n",
        "sources[0].schedule.every: '0s' is not a positive duration",
    ),
    (
        "number is not a duration",
        SOURCE + "    schedule: {every: 30}\n",
        "sources[0].schedule.every: expected a duration like '6h', got 30",
    ),
    (
        "bad cron",
        SOURCE + "    schedule: {cron: '61 * * * *'}\n",
        "sources[0].schedule.cron: '61 * * * *' is not a valid cron expression: Error validating expression"
        " '61': the last value (61) is higher than the maximum value (59)",
    ),
    (
        "cron field count",
        SOURCE + "    schedule: {cron: '0 3 * *'}\n",
        "sources[0].schedule.cron: '0 3 * *' is not a valid cron expression: Wrong number of fields; got 4,"
        " expected 5",
    ),
    (
        "cron weekday numbers",
        SOURCE + "    schedule: {cron: '0 3 * * 1-5'}\n",
        "sources[0].schedule.cron: '0 3 * * 1-5' is not a valid cron expression: write the day of the week"
        " as names (mon-fri, sun), not numbers",
    ),
    (
        "cron nth weekday",
        SOURCE + "    schedule: {cron: '0 3 * * sun#1'}\n",
        "sources[0].schedule.cron: '0 3 * * sun#1' is not a valid cron expression: '#' is not supported",
    ),
    (
        "every and cron",
        SOURCE + "    schedule: {every: 1d, cron: '0 3 * * *'}\n",
        "sources[0].schedule: give either 'every' or 'cron', not both",
    ),
    ("neither every nor cron", SOURCE + "    schedule: {}\n", "sources[0].schedule: give 'every' or 'cron'"),
    (
        "empty cron from env",
        SOURCE + "    schedule: {cron: '${CRON:-}'}\n",
        "sources[0].schedule: give 'every' or 'cron'",
    ),
    # values
    (
        "ftp url",
        SOURCE.replace("https://research.example.edu/ws/oai", "ftp://x"),
        "sources[0].url: 'ftp://x' is not an http(s) URL",
    ),
    (
        "url without host",
        SOURCE.replace("https://research.example.edu/ws/oai", "https:///oai"),
        "sources[0].url: 'https:///oai' is not an http(s) URL",
    ),
    (
        "bad log level",
        "logging: {level: verbose}\n" + SOURCE,
        "logging.level: 'verbose' is not one of DEBUG, INFO, WARNING, ERROR",
    ),
    (
        "bad log format",
        "logging: {format: xml}\n" + SOURCE,
        "logging.format: 'xml' is not one of json, console",
    ),
    (
        "negative rate limit",
        SOURCE + "    rate_limit: -1\n",
        "sources[0].rate_limit: must be greater than 0, got -1",
    ),
    ("zero timeout", "http: {timeout: 0}\n" + SOURCE, "http.timeout: must be greater than 0, got 0"),
    ("negative retries", "http: {retries: -1}\n" + SOURCE, "http.retries: must be at least 0, got -1"),
    (
        "no empty pages",
        SOURCE + "    max_empty_pages: 0\n",
        "sources[0].max_empty_pages: must be at least 1, got 0",
    ),
    (
        "empty metadata prefix",
        SOURCE + "    metadata_prefix: ''\n",
        "sources[0].metadata_prefix: must not be empty",
    ),
    ("empty user agent", "http: {user_agent: ''}\n" + SOURCE, "http.user_agent: must not be empty"),
    (
        "database not sqlite or postgresql",
        "database: {url: 'mysql://u:pw@h/db'}\n" + SOURCE,
        "database.url: 'mysql://u:***@h/db' is not a sqlite or postgresql URL",
    ),
    (
        "database path without scheme",
        "database: {url: harvester.db}\n" + SOURCE,
        "database.url: 'harvester.db' is not a database URL (use sqlite:///PATH or postgresql+psycopg://HOST/DB)",
    ),
    (
        "database driver not installed",
        "database: {url: 'postgresql+psycopg2://h/db'}\n" + SOURCE,
        "database.url: 'postgresql+psycopg2://h/db' uses the driver 'psycopg2', which is not installed"
        " (use postgresql:// or postgresql+psycopg://)",
    ),
    # YAML
    (
        "yaml syntax error",
        "sources: [a, b\n",
        "line 2, column 1: expected ',' or ']', but got '<stream end>'",
    ),
    (
        "yaml mapping in scalar",
        "logging: level: INFO\n",
        "line 1, column 15: mapping values are not allowed here",
    ),
    (
        "yaml tab",
        "logging:\n\tlevel: INFO\n",
        "line 2, column 1: found character '\\t' that cannot start any token",
    ),
    (
        "yaml python tag",
        "x: !!python/object/apply:os.system ['true']\n",
        "line 1, column 4: could not determine a constructor for the tag"
        " 'tag:yaml.org,2002:python/object/apply:os.system'",
    ),
    (
        "two documents",
        SOURCE + "---\nsources: []\n",
        "line 5, column 1: expected a single document in the stream, but found another document",
    ),
    (
        "control character",
        'logging: {level: "INFO"}\x07\n',
        "line 1, column 25: unacceptable character #x0007",
    ),
    (
        "duplicate yaml key",
        SOURCE + "    url: https://other.example.edu/oai\n",
        "sources[0].url: duplicate key",
    ),
    ("duplicate top-level key", "logging: {}\n" + SOURCE + "logging: {}\n", "logging: duplicate key"),
    (
        "duplicate key in flow mapping",
        SOURCE + "    schedule: {every: 1d, every: 2d}\n",
        "sources[0].schedule.every: duplicate key",
    ),
    (
        "recursive alias",
        "x: &a [*a]\n" + SOURCE,
        "x[0]: an alias refers to a mapping or list that contains it",
    ),
    ("top level is a list", "- name: pure\n", "expected a mapping at the top level, got a list"),
    ("top level is a scalar", "harvester\n", "expected a mapping at the top level, got a string"),
    ("empty file", "", "the file is empty"),
    ("only comments", "# sources:\n#   - name: pure\n", "the file is empty"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=name) for name, text, expected in MALFORMED],
)
def test_malformed_config(write, text: str, expected: str) -> None:
    assert str(error_of(write(text))) == f"{FILE}: {expected}"


def test_at_least_twenty_malformed_cases() -> None:
    assert len(MALFORMED) >= 20


def test_yaml_merge_keys_are_not_duplicates(write) -> None:
    config = write(
        """\
        sources:
          - &pure {name: pure, type: oai-pmh, url: 'https://a.org/oai', rate_limit: 1}
          - <<: *pure
            name: pure2
            rate_limit: 3
        """
    )
    assert [(s.name, s.rate_limit) for s in load_settings(config, env={}).sources] == [
        ("pure", 1.0),
        ("pure2", 3.0),
    ]


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    error = error_of("config/harvester.yaml")
    assert str(error) == "config/harvester.yaml: cannot read: [Errno 2] No such file or directory"
    assert (error.key_path, error.problem) == (None, "cannot read: [Errno 2] No such file or directory")


def test_directory_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert str(error_of(".")) == ".: cannot read: [Errno 21] Is a directory"


def test_not_utf8(write) -> None:
    assert str(error_of(write(b"logging: {level: \xff}\n"))) == (
        f"{FILE}: cannot read: not UTF-8 text (byte 0xff at offset 17)"
    )


def test_utf8_bom_is_fine(write) -> None:
    assert load_settings(write(b"\xef\xbb\xbf" + SOURCE.encode()), env={}).sources[0].name == "pure"


def test_first_problem_in_document_order_and_the_count(write) -> None:
    # pydantic reports in field order (http before sources); the file has sources first.
    config = write(
        """\
        sources:
          - name: pure
            type: oai-pmh
            url: ftp://pure
            sheduel: 1
        logging: {level: loud}
        http: {timeout: abc, retries: -1}
        """
    )
    error = error_of(config)
    assert str(error) == f"{FILE}: sources[0].url: 'ftp://pure' is not an http(s) URL (and 4 more problems)"
    assert (error.key_path, error.more) == ("sources[0].url", 4)


def test_one_more_problem_is_singular(write) -> None:
    config = write("http: {timeout: abc, retries: -1}\n" + SOURCE)
    assert str(error_of(config)) == f"{FILE}: http.timeout: expected a number, got 'abc' (and 1 more problem)"


def test_long_and_multiline_values_stay_on_one_line(write) -> None:
    config = write(SOURCE.replace("https://research.example.edu/ws/oai", "|\n      line one\n      line two"))
    assert str(error_of(config)) == f"{FILE}: sources[0].url: 'line one\\nline two\\n' is not an http(s) URL"
    config = write("logging: {level: '" + "x" * 200 + "'}\n" + SOURCE)
    assert str(error_of(config)) == (
        f"{FILE}: logging.level: '{'x' * 57}...' is not one of DEBUG, INFO, WARNING, ERROR"
    )


def test_config_error_pieces_and_pickling() -> None:
    error = ConfigError("c.yaml", "http.timeout", "expected a number, got 'abc'", more=2)
    assert str(error) == "c.yaml: http.timeout: expected a number, got 'abc' (and 2 more problems)"
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    assert str(ConfigError("c.yaml", None, "the file is empty")) == "c.yaml: the file is empty"


# --- secrets --------------------------------------------------------------------------------------


class _FakeKeyedSource(BaseModel):
    """Stands in for the later Crossref/Scopus models with SecretStr fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: Literal["scopus"] = "scopus"
    api_key: SecretStr
    inst_token: SecretStr | None = None
    enabled: bool = True


def test_secrets_finds_every_secret_str() -> None:
    settings = Settings.model_construct(
        database=DatabaseSettings(url="postgresql://u:dbpw@h/db"),
        sources=(
            _FakeKeyedSource(name="a", api_key=SecretStr("key-aaaa"), inst_token=SecretStr("tok")),
            _FakeKeyedSource(name="b", api_key=SecretStr("")),
        ),
    )
    assert settings.secrets() == ("key-aaaa", "dbpw", "tok")


def test_type_errors_never_show_a_secret_value() -> None:
    from harvester.settings import _problem

    error = {"type": "string_type", "input": 123456789, "loc": ("api_key",)}
    assert _problem(error, "sources[0].api_key", SecretStr | None) == "expected a string, got a number"
    assert _problem(error, "sources[0].set", str | None) == "expected a string, got 123456789"


# --- parse_duration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", dt.timedelta(seconds=30)),
        ("1s", dt.timedelta(seconds=1)),
        ("15m", dt.timedelta(minutes=15)),
        ("90m", dt.timedelta(minutes=90)),
        ("6h", dt.timedelta(hours=6)),
        ("1d", dt.timedelta(days=1)),
        ("30d", dt.timedelta(days=30)),
        ("2w", dt.timedelta(weeks=2)),
        ("007h", dt.timedelta(hours=7)),
    ],
)
def test_parse_duration(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("often", "'often' is not a duration"),
        ("", "'' is not a duration"),
        ("6", "'6' is not a duration"),
        ("h", "'h' is not a duration"),
        ("1h30m", "'1h30m' is not a duration"),
        ("1.5h", "'1.5h' is not a duration"),
        ("-1h", "'-1h' is not a duration"),
        ("+1h", "'+1h' is not a duration"),
        ("6H", "'6H' is not a duration"),
        (" 6h", "' 6h' is not a duration"),
        ("6 h", "'6 h' is not a duration"),
        ("1y", "'1y' is not a duration"),
        ("١h", "'١h' is not a duration"),  # Arabic-Indic digit one
        ("0s", "'0s' is not a positive duration"),
        ("99999999999w", "'99999999999w' is too long a duration"),
    ],
)
def test_parse_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:  # noqa: PT011 (the message is checked exactly)
        parse_duration(text)
    assert str(info.value) == message


# --- whatever the file holds: a Settings or one ConfigError line ------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["oai-pmh", "pure", "6h", "0 3 * * *", "https://a.org/oai", "${X}", "${Y:-}", ""]),
)
_keys = st.sampled_from(
    [
        "sources",
        "name",
        "type",
        "url",
        "schedule",
        "every",
        "cron",
        "http",
        "timeout",
        "merge",
        "precedence",
        "logging",
        "level",
        "since",
        "rate_limit",
        "set",
        "database",
        "window",
        "zzz",
    ]
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=5),
    max_leaves=25,
)


def _settings_or_line(path: Path, env: dict[str, str]) -> Settings | str:
    try:
        return load_settings(path, env=env)
    except ConfigError as error:
        return str(error)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6))
def test_any_structure_gives_settings_or_one_line(
    tmp_path_factory: pytest.TempPathFactory, data: object
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = _settings_or_line(path, {"X": "x"})
    if isinstance(result, str):
        assert result.startswith(f"{path}: ")
        assert_one_plain_line(result)
    else:
        assert isinstance(result, Settings)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_gives_settings_or_one_line(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = _settings_or_line(path, {})
    if isinstance(result, str):
        assert_one_plain_line(result)
