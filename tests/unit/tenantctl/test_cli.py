"""tenantctl's command line: every command has --help, and a missing target is a usage error (no network)."""

from __future__ import annotations

import pytest

from tenantctl.cli import COMMANDS, EXIT_USAGE, main, parser


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        parser().parse_args([command, "--help"])
    assert done.value.code == 0
    assert command in capsys.readouterr().out


def test_local_without_a_running_stack_says_what_it_needs(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--local", "--state-dir", str(tmp_path), "list"]) == EXIT_USAGE
    assert "no admin credentials" in capsys.readouterr().err


def test_a_deployment_without_an_api_url_says_where_to_find_it(monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TENANTS_API_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert main(["--region", "eu-west-1", "list"]) == EXIT_USAGE
    assert "terraform output -raw api_url" in capsys.readouterr().err
