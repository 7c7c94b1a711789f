"""Settings: flags, CALLGATE_* variables and a config file, in that order of precedence; a bad
value stops start-up with one line naming it; ``config show`` prints them with secrets
masked."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import msgspec
import pytest

from callgate import settings
from engine.errors import ConfigurationError
from engine.tokens import AuthLimits
from sip.digest import ALGORITHMS
from sip.redirect import SipSettings

from ..conftest import CALLGATE


def _callgate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CALLGATE_")}
    return subprocess.run([str(CALLGATE), *args], capture_output=True, text=True, timeout=30,
                          env={**clean, **(env or {})})


def _shown(*args: str, env: dict[str, str] | None = None) -> dict[str, dict[str, object]]:
    done = _callgate("config", "show", "--format", "json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return {s["key"]: s for s in json.loads(done.stdout)["settings"]}


@pytest.mark.parametrize(("args", "env", "file", "named"), [
    (["--port", "http"], {}, "", "setting port = 'http' (from --port) is not a port number"),
    ([], {"CALLGATE_LOG_LEVEL": "loud"}, "",
     "setting log_level = 'loud' (from CALLGATE_LOG_LEVEL) is not one of debug, info"),
    ([], {}, 'redis_url = "http://:hunter2@example.com"\n',
     "setting redis_url = 'http://***@example.com' (from file "),
    ([], {"CALLGATE_REDIS_URL": "redis://:hunter2@10.0.0.5?pool=0"}, "",
     "setting redis_url = 'redis://***@10.0.0.5?pool=0' (from CALLGATE_REDIS_URL) is not a "
     "usable Redis URL: pool='0' is not a positive number"),
    ([], {"CALLGATE_SIP_TRUSTED": "10.0.0.0/8,not-a-network"}, "",
     "setting sip_trusted = '10.0.0.0/8,not-a-network' (from CALLGATE_SIP_TRUSTED) is not an "
     "address or CIDR network"),
    ([], {}, "workers = 0\n", "setting workers = '0' (from file "),
    (["--sip-tls", "127.0.0.1:5061"], {}, "", "setting sip_tls needs sip_cert and sip_key too"),
], ids=["port flag", "log level env", "redis url in the file", "redis url option env",
        "trusted peers env", "workers in the file", "tls without its certificate"])
def test_a_bad_setting_stops_start_up_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], file: str, named: str
) -> None:
    config = tmp_path / "callgate.toml"
    config.write_text(file)
    done = _callgate("serve", "--data", str(tmp_path / "data"), "--config", str(config), *args,
                     env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and named in done.stderr, done.stderr
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == "" and not (tmp_path / "data").exists()  # nothing started


def test_a_flag_beats_the_environment_which_beats_the_file(tmp_path: Path) -> None:
    config = tmp_path / "callgate.toml"
    config.write_text('port = 9001\nhost = "0.0.0.0"\nworkers = 3\nsip_trusted = ["10.0.0.0/8"]\n')
    shown = _shown("--config", str(config), "--port", "9003",
                   env={"CALLGATE_PORT": "9002", "CALLGATE_HOST": "10.1.1.1"})
    assert (shown["port"]["value"], shown["port"]["source"]) == ("9003", "flag")
    assert (shown["host"]["value"], shown["host"]["source"]) == ("10.1.1.1", "env")
    assert shown["workers"]["value"] == "3" and str(shown["workers"]["source"]).startswith("file")
    assert shown["sip_trusted"]["value"] == "10.0.0.0/8"
    assert (shown["drain"]["value"], shown["drain"]["source"]) == ("5.0", "default")


def test_the_config_file_may_come_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "callgate.toml"
    config.write_text("config_poll = 2.5\n")
    shown = _shown(env={"CALLGATE_CONFIG": str(config)})
    assert shown["config_poll"]["value"] == "2.5"


def test_config_show_masks_the_redis_password() -> None:
    shown = _shown("--redis-url", "redis://:hunter2@10.0.0.5:6379/0")
    assert shown["redis_url"]["secret"] is True
    assert "hunter2" not in json.dumps(shown)
    assert shown["redis_url"]["value"] == "redis://10.0.0.5:6379/0"


def test_config_show_as_text_lists_every_setting() -> None:
    done = _callgate("config", "show")
    assert done.returncode == 0
    keys = [line.split()[0] for line in done.stdout.splitlines()]
    assert keys == [s.key for s in settings.SETTINGS if s.applies_to("serve")]


def test_a_config_file_naming_an_unknown_setting_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "callgate.toml"
    config.write_text("prot = 8080\n")
    with pytest.raises(ConfigurationError, match="no setting named 'prot'"):
        settings.resolve("serve", {"config": str(config)}, {})


def test_every_setting_is_one_key_one_flag_one_variable() -> None:
    for setting in settings.SETTINGS:
        assert setting.flag == "--" + setting.key.replace("_", "-")
        assert setting.env == "CALLGATE_" + setting.key.upper()
    keys = [s.key for s in settings.SETTINGS]
    assert len(keys) == len(set(keys))


def test_defaults_apply_when_nothing_is_given() -> None:
    values = settings.resolve("serve", {}, {})
    assert values["port"].value == 8080 and values["port"].source == "default"
    assert values["sip"].value is None and values["sip_trusted"].value == ()


def test_the_defaults_are_the_settings_structures_own() -> None:
    values = settings.resolve("serve", {"sip": "127.0.0.1:5060"}, {})
    serve = settings.serve_settings(values)
    assert serve.sip is not None and serve.sip.redirect == SipSettings()
    assert serve.auth_limits == AuthLimits()
    assert msgspec.structs.replace(serve, sip=None) == settings.ServeSettings()
    assert values["sip_digest"].value == ALGORITHMS


def test_an_unknown_callgate_variable_is_warned_about() -> None:
    done = _callgate("config", "show", env={"CALLGATE_LOGLEVEL": "debug"})
    assert done.returncode == 0
    assert "CALLGATE_LOGLEVEL is not a callgate setting" in done.stderr


def test_config_show_writes_values_as_they_are_given() -> None:
    shown = _shown("--sip", "0.0.0.0:5060", "--sip-trusted", "10.0.0.0/8=acme",
                   "--sip-trusted", "192.0.2.7")
    assert shown["sip"]["value"] == "0.0.0.0:5060"
    assert shown["sip_trusted"]["value"] == "10.0.0.0/8=acme,192.0.2.7"
