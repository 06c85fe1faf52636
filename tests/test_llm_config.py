"""LLM settings at the command line: checked before any work, recorded without secrets, asked for again
on resume when a URL password had to be redacted."""

from __future__ import annotations

import json

import pytest
from fake_openai import FakeOpenAI

from lapt.agents.llm import LLMConfigError, LLMSettings, make_llm_reasoner
from lapt.cli import main
from lapt.runs.config import LLMConfig, RunSettings

RUN = ("run", "--space", "nb201", "--source", "cifar10", "--target", "cifar100", "--quiet", "--no-store")
PASSWORD = "s3cret-Passw0rd-xyz"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lapt: error: "), err
    return lines[0]


@pytest.mark.parametrize(
    "extra,message",
    [
        (("--llm-base-url", "not-a-url"), "--llm-base-url 'not-a-url': expected an http:// or https:// URL"),
        (("--llm-base-url", "ftp://127.0.0.1/v1"), "expected an http:// or https:// URL with a host"),
        (("--llm-base-url", "http:///v1"), "expected an http:// or https:// URL with a host"),
        (("--llm-base-url", "http://127.0.0.1:99999/v1"), "expected an http:// or https:// URL"),
        (("--llm-timeout", "inf"), "--llm-timeout must be a finite number of seconds > 0, got inf"),
        (("--llm-timeout", "nan"), "--llm-timeout must be a finite number of seconds > 0, got nan"),
        (("--llm-timeout", "0"), "--llm-timeout must be a finite number of seconds > 0, got 0"),
        (("--llm-option", "temperature=hot"), "temperature: expected a number in [0, 2] or null, got 'hot'"),
        (("--llm-option", "max_tokens=0"), "max_tokens: expected an integer >= 1 or null, got 0"),
        (("--llm-option", "messages=[]"), "the value must be a number, a string, true, false or null"),
        (("--llm-option", "stream=true"), "'stream': lapt sets this field itself"),
        (("--llm-option", "temperature"), "expected KEY=VALUE"),
    ],
)
def test_bad_llm_options_fail_before_any_work(capsys, tmp_path, extra, message):
    run_dir = tmp_path / "run"
    argv = [*RUN, "--run-dir", str(run_dir), "--llm", "openai:fake", "--llm-base-url", "http://127.0.0.1:9/v1"]
    code, out, err = run_cli(capsys, *argv, *extra)
    assert code == 2 and message in one_line_error(err) and out == ""
    assert not run_dir.exists()


def test_bad_base_url_from_the_environment_names_its_source(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", f"htp://user:{PASSWORD}@host/v1")
    code, _, err = run_cli(capsys, *RUN, "--run-dir", str(tmp_path / "run"), "--llm", "openai:fake")
    line = one_line_error(err)
    assert code == 2 and line.startswith("lapt: error: OPENAI_BASE_URL 'htp://user:[redacted]@host/v1'")
    assert PASSWORD not in err


def test_options_are_parsed_as_json_scalars_or_strings():
    from lapt.runs.config import parse_llm_option

    assert parse_llm_option("temperature=0.7") == ("temperature", 0.7)
    assert parse_llm_option("reasoning_effort=low") == ("reasoning_effort", "low")
    assert parse_llm_option("max_completion_tokens=900") == ("max_tokens", 900)
    assert parse_llm_option("temperature=null") == ("temperature", None)
    assert parse_llm_option("enable_thinking=false") == ("enable_thinking", False)


def test_api_settings_are_checked_too():
    with pytest.raises(LLMConfigError, match="base_url 'localhost:8000': expected an http"):
        LLMSettings(model="m", base_url="localhost:8000")
    with pytest.raises(LLMConfigError, match="timeout_s: Input should be a finite number"):
        LLMSettings(model="m", base_url="http://h/v1", timeout_s=float("inf"))


def test_url_password_is_redacted_everywhere_and_resume_asks_for_the_url(capsys, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    with FakeOpenAI() as fake:
        url = fake.url.replace("http://", f"http://lapt:{PASSWORD}@")
        code, out, err = run_cli(
            capsys,
            *RUN,
            "--budget",
            "6",
            "--run-dir",
            str(run_dir),
            "--llm",
            "openai:fake",
            "--llm-base-url",
            url,
            "--llm-option",
            "temperature=0.2",
            "--llm-option",
            "top_k=20",
        )
        assert code == 0, err
        assert fake.chat_requests() and all(r.body["top_k"] == 20 for r in fake.chat_requests())
        config = json.loads((run_dir / "config.json").read_text())
        llm = config["settings"]["llm"]
        assert llm["base_url"] == url.replace(PASSWORD, "[redacted]")
        assert llm["options"] == {"temperature": 0.2, "top_k": 20}
        for path in run_dir.rglob("*"):
            if path.is_file():
                assert PASSWORD.encode() not in path.read_bytes(), path
        assert PASSWORD not in out + err

        # Resuming needs the URL again: the recorded one lost its password.
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        code, _, err = run_cli(capsys, "resume", str(run_dir), "--quiet")
        line = one_line_error(err)
        assert code == 2 and "held a password" in line and "--llm-base-url" in line and PASSWORD not in line
        other = f"http://lapt:other-password@127.0.0.1:{fake.port + 1}/v1"  # another server
        code, _, err = run_cli(capsys, "resume", str(run_dir), "--quiet", "--llm-base-url", other)
        assert code == 2 and "is not the URL this run used" in one_line_error(err) and "other-password" not in err
        code, out, err = run_cli(capsys, "resume", str(run_dir), "--quiet", "--llm-base-url", url)
        assert code == 0, err
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        code, _, err = run_cli(capsys, "resume", str(run_dir), "--quiet")
        assert code == 0, err


def test_run_settings_hold_a_typed_llm_config_and_the_factory_rebuilds_the_reasoner():
    config = LLMConfig(model="m", base_url=f"https://u:{PASSWORD}@example.org/v1", options={"seed": 1})
    settings = RunSettings(space="nb201", sources=["cifar10"], target="cifar100", llm=config)
    dumped = settings.model_dump(mode="json")
    assert dumped["llm"]["base_url"] == "https://u:[redacted]@example.org/v1"
    assert RunSettings.model_validate(dumped).llm == config
    with pytest.raises(LLMConfigError, match="held a password"):
        make_llm_reasoner(config, None, None, None)
    reasoner = make_llm_reasoner(config, None, f"https://u:{PASSWORD}@example.org/v1", None)
    assert reasoner.settings.base_url.endswith("@example.org/v1") and reasoner.settings.options == {"seed": 1}
    plain = LLMConfig(model="m", base_url="http://127.0.0.1:8000/v1")
    assert make_llm_reasoner(plain, None, None, None).settings.base_url == "http://127.0.0.1:8000/v1"
