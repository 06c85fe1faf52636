"""``--llm-option`` as a careless user gives it: twice (refused, not last-wins) or with a credential
(``api_key=...``: sent to the server, recorded ``[redacted]``, asked for again by a resume). Also the
refusal naming ``--source`` when a table-less space is started from ``--principles``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

from lapt.cli import main
from lapt.runs.config import LLMConfig, is_secret_option

RUN = ("run", "--space", "nb201", "--source", "cifar10", "--target", "cifar100", "--quiet", "--no-store")
SECRET = "sk-option-secret-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[1]


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lapt: error: "), err
    return lines[0]


@pytest.mark.parametrize("name,secret", [
    ("api_key", True), ("x_api_key", True), ("auth_token", True), ("client_secret", True), ("password", True),
    ("apikey", True), ("max_tokens", False), ("temperature", False), ("top_k", False), ("reasoning_effort", False),
])
def test_which_option_names_are_secrets(name, secret):
    assert is_secret_option(name) is secret


def test_an_option_given_twice_is_refused(capsys, tmp_path):
    run_dir = tmp_path / "run"
    base = [*RUN, "--run-dir", str(run_dir), "--llm", "openai:fake", "--llm-base-url", "http://127.0.0.1:9/v1"]
    assert main([*base, "--llm-option", "temperature=0.1", "--llm-option", "temperature=0.9"]) == 2
    assert "--llm-option temperature is given twice" in one_line_error(capsys.readouterr().err)
    assert main([*base, "--llm-option", "max_tokens=100", "--llm-option", "max_completion_tokens=200"]) == 2
    assert "max_completion_tokens is another name of max_tokens" in one_line_error(capsys.readouterr().err)
    assert main([*base, "--llm-option", f"api_key={SECRET}", "--llm-option", "api_key=other-secret-value"]) == 2
    err = capsys.readouterr().err
    assert "api_key is given twice" in one_line_error(err) and SECRET not in err
    assert not run_dir.exists()


def test_a_secret_option_is_sent_but_never_recorded_and_a_resume_asks_for_it(capsys, tmp_path):
    run_dir = tmp_path / "run"
    with FakeOpenAI() as fake:
        code = main([*RUN, "--budget", "6", "--run-dir", str(run_dir), "--llm", "openai:fake", "--llm-base-url",
                     fake.url, "--llm-option", f"api_key={SECRET}", "--llm-option", "max_tokens=900"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert fake.chat_requests() and all(r.body["api_key"] == SECRET for r in fake.chat_requests())
        llm = json.loads((run_dir / "config.json").read_text())["settings"]["llm"]
        assert llm["options"] == {"api_key": "[redacted]", "max_tokens": 900}
        for path in run_dir.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), path
        assert SECRET not in out + err

        code = main(["resume", str(run_dir), "--quiet"])
        line = one_line_error(capsys.readouterr().err)
        assert code == 2 and "--llm-option api_key was recorded redacted" in line
        assert main(["resume", str(run_dir), "--quiet", "--llm-option", f"api_key={SECRET}", "--llm-option",
                     "temperature=0.5"]) == 2
        assert "a resume takes only the run's redacted options (api_key)" in one_line_error(capsys.readouterr().err)
        code = main(["resume", str(run_dir), "--quiet", "--llm-option", f"api_key={SECRET}"])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert SECRET not in out + err


def test_the_recorded_config_redacts_only_credentials():
    config = LLMConfig(model="m", options={"api_key": SECRET, "max_tokens": 10, "auth_token": None})
    assert config.options == {"api_key": "[redacted]", "max_tokens": 10, "auth_token": None}
    assert config.redacted_options == ["api_key"]


def test_source_with_principles_on_a_tableless_space_blames_source(capsys, tmp_path):
    space = tmp_path / "notable.toml"
    toml = (ROOT / "examples" / "toy_space" / "toy_space.toml").read_text().split("[table]")[0]
    space.write_text(toml + '[evaluator]\nfunction = "scorer_notable:score"\n')
    (tmp_path / "scorer_notable.py").write_text("def score(arch, task):\n    return 1.0\n")
    principles = tmp_path / "p.json"
    principles.write_text(json.dumps({"version": 0, "source": "by hand", "principles": [
        {"statement": "convolutions help", "favour": ["conv_3x3"]}]}))
    code = main(["run", "--space", str(space), "--source", "task_a", "--target", "task_b", "--principles",
                 str(principles), "--run-dir", str(tmp_path / "never"),
                 "--no-store", "--quiet", "--budget", "4"])
    line = one_line_error(capsys.readouterr().err)
    assert code == 2 and line.startswith("lapt: error: --source task_a: ") and "leave --source out" in line, line
