"""Settings: every field has flag, env var, file key and help; precedence flag > env > file > default."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

from core.errors import InvalidArgument
from server import config
from server.config import Settings, resolve
from server.limits import Limits


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return parser.parse_args(argv)


def test_every_setting_has_a_flag_an_env_var_and_help_in_the_help_text() -> None:
    parser = argparse.ArgumentParser(prog="segmentd serve")
    config.add_arguments(parser)
    text = " ".join(parser.format_help().split())
    for f in fields(Settings):
        assert f.metadata["help"]
        assert config.flag_of(f.name) in text
        assert config.env_of(f.name) in text
        assert f"config {f.name}," in text


def test_defaults_when_nothing_is_given() -> None:
    assert resolve({}, {}) == Settings()


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    file = tmp_path / "segmentd.toml"
    file.write_text('listen = "127.0.0.1:1"\nmax_streams = 3\nmax_workers = 7\nlog_format = "text"\n')
    env = {"SEGMENTD_LISTEN": "127.0.0.1:2", "SEGMENTD_MAX_STREAMS": "4", "SEGMENTD_CONFIG": str(file)}
    got = resolve(parse("--listen", "127.0.0.1:3"), env)
    assert got.listen == "127.0.0.1:3"  # flag
    assert got.max_streams == 4  # env
    assert (got.max_workers, got.log_format) == (7, "text")  # file
    assert got.grace_s == Settings().grace_s  # default


def test_booleans_paths_and_numbers_convert(tmp_path: Path) -> None:
    env = {"SEGMENTD_DEMO": "yes", "SEGMENTD_DATA_DIR": str(tmp_path), "SEGMENTD_EVAL_DEADLINE_S": "2.5",
           "SEGMENTD_MAX_REQUEST_BYTES": "1_048_576"}
    got = resolve({}, env)
    assert got.demo is True and got.data_dir == tmp_path
    assert got.eval_deadline_s == 2.5 and got.max_request_bytes == 1_048_576
    assert resolve(parse("--no-demo"), env).demo is False


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SEGMENTD_MAX_STREAMS": "many"}, "SEGMENTD_MAX_STREAMS"),
        ({"SEGMENTD_MAX_STREAMS": "-1"}, "SEGMENTD_MAX_STREAMS"),
        ({"SEGMENTD_DEMO": "maybe"}, "SEGMENTD_DEMO"),
        ({"SEGMENTD_FSYNC": "sometimes"}, "SEGMENTD_FSYNC"),
        ({"SEGMENTD_EVAL_DEADLINE_S": "nan"}, "SEGMENTD_EVAL_DEADLINE_S"),
    ],
)
def test_a_bad_value_names_its_source(env: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve({}, env)
    assert caught.value.field == named


def test_a_bad_config_file_is_refused_naming_it(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("no_such_setting = 1\n")
    with pytest.raises(InvalidArgument, match="no_such_setting"):
        resolve({}, {}, file)
    file.write_text("listen = \n")
    with pytest.raises(InvalidArgument, match="not valid TOML"):
        resolve({}, {}, file)
    file.write_text("max_streams = 'x'\n")
    with pytest.raises(InvalidArgument) as caught:
        resolve({}, {}, file)
    assert caught.value.field == "config max_streams"
    with pytest.raises(InvalidArgument, match="cannot read"):
        resolve({}, {}, tmp_path / "missing.toml")


def test_a_segmentd_table_in_the_file_works(tmp_path: Path) -> None:
    file = tmp_path / "segmentd.toml"
    file.write_text("[segmentd]\nmax_batch_events = 5\n")
    assert resolve({}, {}, file).max_batch_events == 5


def test_limits_come_from_the_settings_of_the_same_names() -> None:
    settings = resolve({}, {"SEGMENTD_MAX_LIST_ITEMS": "12"})
    limits = settings.limits()
    assert limits.max_list_items == 12
    assert {f.name for f in fields(Limits)} <= {f.name for f in fields(Settings)}
    assert Limits() == Settings().limits()  # the two tables agree on defaults


def test_segmentd_serve_help_documents_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main

    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name, flag, env, _, help_text in config.describe():
        assert flag in text and env in text and " ".join(help_text.split()) in text, name
    assert "--config FILE" in text and config.CONFIG_ENV in text
