"""The one ``linqrag`` command: each subcommand is a package's own (same flags, help, error line and exit
codes), every package subcommand has one, and ``linqrag --help`` loads no package CLI."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from app.commands import GROUPS, SUBCOMMANDS, main, parser_of, subcommand_list
from linqrag.errors import EXIT_USAGE, subcommand_parser

ROOT = Path(__file__).resolve().parents[1]


def package_subcommands(package: str) -> dict[str, str]:
    """``{subcommand: its help line}`` of ``python -m PACKAGE``'s own parser."""
    cli = next(c for c in SUBCOMMANDS.values() if c.package == package).cli()
    action = next(a for a in cli.build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_the_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"] == {"linqrag": "app.commands:main"}


@pytest.mark.parametrize("package", sorted(GROUPS))
def test_every_package_subcommand_is_a_linqrag_subcommand_with_its_help_line(package):
    own = package_subcommands(package)
    mapped = {c.target: c.summary for c in SUBCOMMANDS.values() if c.package == package}
    assert mapped == own


def test_the_help_lists_every_subcommand_with_its_line(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert subcommand_list() in out
    listed = dict(re.findall(r"^  ([a-z][\w-]*) +(\S.*)$", out, re.M))
    assert listed == {c.name: c.summary for c in SUBCOMMANDS.values()}
    assert all(f"(python -m {package}" in out for package in GROUPS)


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_a_subcommand_is_its_packages_parser_under_its_new_name(name):
    command = SUBCOMMANDS[name]
    ours = parser_of(name)
    theirs = subcommand_parser(command.cli().build_parser(), command.target)
    assert ours.prog == f"linqrag {name}"
    assert theirs.prog == f"python -m {command.package} {command.target}"
    assert [a.option_strings for a in ours._actions] == [a.option_strings for a in theirs._actions]
    assert ours.description == theirs.description and ours.epilog == theirs.epilog
    # the same help below the usage line (which names the command, so it wraps at another column)
    assert ours.format_help().split("\n\n", 1)[1] == theirs.format_help().split("\n\n", 1)[1]


def test_a_bad_flag_is_argparses_error_naming_the_linqrag_command(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["build"])
    assert stop.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "usage: linqrag build" in err
    assert "linqrag build: error: the following arguments are required: --corpus" in err
    # and `python -m indexing build` keeps its own name afterwards
    assert parser_of("build").prog == "linqrag build"
    assert SUBCOMMANDS["build"].cli().build_parser().prog == "python -m indexing"


def test_a_fixable_problem_is_the_same_error_line_and_exit_code(tmp_path, capsys):
    from indexing.cli import main as indexing_main

    missing = tmp_path / "none"
    assert main(["stats", "--index-dir", str(missing)]) == indexing_main(["stats", "--index-dir", str(missing)])
    assert main(["search", "query", "--index-dir", str(missing)]) == EXIT_USAGE
    ours = capsys.readouterr().err.strip().splitlines()[-1]
    assert indexing_main(["search", "query", "--index-dir", str(missing)]) == EXIT_USAGE
    theirs = capsys.readouterr().err.strip().splitlines()[-1]
    assert ours == theirs and ours.startswith("error: ")


def test_help_and_an_unknown_subcommand_load_no_package_cli():
    code = ("import sys\nfrom app.commands import main\n"
            "for argv in (['--help'], ['no-such-command'], []):\n"
            "    try:\n        main(argv)\n    except SystemExit as stop:\n        print('exit', stop.code)\n"
            "print(sorted(m for m in ('torch', 'indexing', 'embedder', 'eval', 'finetune', 'app.cli', 'transformers')"
            " if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[-4:] == ["exit 0", "exit 2", "exit 2", "[]"], run.stdout[-800:]
    assert "invalid choice: 'no-such-command'" in run.stderr


def test_a_search_says_which_index_it_chose_when_there_are_several(minilm, tmp_path, capsys):
    from indexing import build_index
    from indexing.cli import main as indexing_main
    from tests.conftest import TOPICS

    for name, kept in (("older", list(TOPICS)[:2]), ("newer", list(TOPICS)[2:])):
        corpus = tmp_path / name
        corpus.mkdir()
        for doc in kept:
            (corpus / doc).write_text(TOPICS[doc], encoding="utf-8")
        build_index(corpus, minilm, tmp_path / "index", show_progress=False)
    assert indexing_main(["search", "volcano", "--index-dir", str(tmp_path / "index"), "--retriever", "bm25"]) == 0
    shown = capsys.readouterr().out
    assert "note: searching 'newer', the newest index here; the others: 'older' (choose with --corpus)" in shown
    assert indexing_main(["search", "volcano", "--index-dir", str(tmp_path / "index"), "--retriever", "bm25",
                          "--corpus", "older"]) == 0
    assert "note: searching" not in capsys.readouterr().out
