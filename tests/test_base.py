"""One base-model lookup: which config.json the lint uses, in which order, and from where.

The adapters here hold LoRA tensors on layers 2..3 only, with num_layers removed:
their num_layers (2 of a 4-layer base) is provable only with the base's
config.json, so whether the fix is written shows whether a base was found.
The fake Hugging Face cache is laid out as huggingface_hub documents it
(https://huggingface.co/docs/huggingface_hub/guides/manage-cache), and
huggingface_hub's own ``try_to_load_from_cache`` confirms it reads it the same way.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from adapter_guard.cli import main

SUFFIX_ADAPTER = {
    "fine_tune_type": "lora",
    "lora_parameters": {"rank": 4, "scale": 20.0, "dropout": 0.0},
}


def write_adapter(directory: Path, *, layers=(2, 3), **config) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for i in layers:
        tensors[f"model.layers.{i}.self_attn.q_proj.lora_a"] = np.zeros((16, 4), np.float32)
        tensors[f"model.layers.{i}.self_attn.q_proj.lora_b"] = np.zeros((4, 16), np.float32)
    save_file(tensors, str(directory / "adapters.safetensors"))
    (directory / "adapter_config.json").write_text(json.dumps({**SUFFIX_ADAPTER, **config}, indent=4))
    return directory


def write_base(directory: Path, layers: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": layers}))
    return directory


def cache_snapshot(cache: Path, repo_id: str, layers: int, *, commit: str, refs=("main",)) -> Path:
    """A model snapshot in the hub cache layout: blobs/<hash>, refs/<name> -> commit,
    snapshots/<commit>/config.json a relative symlink to the blob."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    body = json.dumps({"model_type": "llama", "num_hidden_layers": layers}).encode()
    blob = repo / "blobs" / hashlib.sha1(body).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(body)
    for ref in refs:
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)  # written without a newline, as huggingface_hub does
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / "config.json").symlink_to(Path("..", "..", "blobs", blob.name))
    return snapshot / "config.json"


def lint(args, capsys) -> tuple[int, list[dict]]:
    code = main([*args, "--output-format", "json"])
    return code, json.loads(capsys.readouterr().out)


def num_layers(adapter: Path):
    return json.loads((adapter / "adapter_config.json").read_text()).get("num_layers", "absent")


def only(findings, code):
    found = [f for f in findings if f["code"] == code]
    assert len(found) == 1, findings
    return found[0]


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """The repository root is the working directory; the HF cache is empty and offline."""
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


# -- without a base ------------------------------------------------------------------


def test_without_a_base_num_layers_stays_unproven_and_the_message_says_why(repo, capsys):
    adapter = write_adapter(repo / "adapter", model="org/tiny")
    code, findings = lint(["--fix", str(adapter)], capsys)
    assert code == 1 and num_layers(adapter) == "absent"
    message = only(findings, "AG301")["message"]
    assert "`org/tiny` is not in the local Hugging Face cache" in message
    assert "--fetch-base-config" in message


# -- 1 and 2: explicit bases ---------------------------------------------------------


def test_base_model_option_proves_num_layers_and_is_named_in_the_finding(repo, capsys):
    adapter = write_adapter(repo / "adapter")
    base = write_base(repo / "base", 4)
    code, findings = lint(["--fix", str(adapter), "--base-model", str(base)], capsys)
    assert code == 0 and num_layers(adapter) == 2
    assert f"base config: {base / 'config.json'}, --base-model" in only(findings, "AG301")["message"]


def test_base_model_option_that_does_not_exist_is_a_usage_error(repo, capsys):
    adapter = write_adapter(repo / "adapter")
    before = (adapter / "adapter_config.json").read_bytes()
    assert main(["--fix", str(adapter), "--base-model", str(repo / "no-such-base")]) == 2
    assert "no-such-base` has no config.json" in capsys.readouterr().err
    assert (adapter / "adapter_config.json").read_bytes() == before


def test_base_model_directory_without_config_json_is_a_usage_error(repo, capsys):
    adapter = write_adapter(repo / "adapter")
    (repo / "empty").mkdir()
    assert main([str(adapter), "--base-model", str(repo / "empty")]) == 2


def test_pyproject_base_model_is_used_and_named(repo, capsys):
    adapter = write_adapter(repo / "adapter")
    write_base(repo / "models" / "base", 4)
    (repo / "pyproject.toml").write_text('[tool.adapter-guard]\nbase-model = "models/base"\n')
    code, findings = lint(["--fix", str(adapter)], capsys)
    assert code == 0 and num_layers(adapter) == 2
    assert f"base-model in {repo / 'pyproject.toml'}" in only(findings, "AG301")["message"]


def test_pyproject_base_model_that_does_not_exist_is_a_usage_error(repo, capsys):
    write_adapter(repo / "adapter")
    (repo / "pyproject.toml").write_text('[tool.adapter-guard]\nbase-model = "models/gone"\n')
    assert main([str(repo / "adapter")]) == 2
    assert "base-model in" in capsys.readouterr().err


def test_base_model_option_wins_over_pyproject_and_the_config_beside_the_adapter(repo, capsys):
    adapter = write_adapter(repo / "adapter")
    write_base(adapter, 6)  # beside: would make layers 2..3 not a suffix
    write_base(repo / "models" / "six", 6)
    (repo / "pyproject.toml").write_text('[tool.adapter-guard]\nbase-model = "models/six"\n')
    base = write_base(repo / "base", 4)
    assert main(["--fix", str(adapter), "--base-model", str(base)]) == 0
    assert num_layers(adapter) == 2


def test_an_unusable_explicit_base_is_reported_and_not_replaced_by_a_guess(repo, capsys):
    adapter = write_adapter(repo / "adapter")
    write_base(adapter, 4)  # a usable config beside the adapter is not taken instead
    base = repo / "base"
    base.mkdir()
    (base / "config.json").write_text("{not json")
    code, findings = lint(["--fix", str(adapter), "--base-model", str(base)], capsys)
    assert code == 1 and num_layers(adapter) == "absent"
    assert "is unusable: it is not valid JSON" in only(findings, "AG310")["message"]


# -- 3: beside the adapter -----------------------------------------------------------


def test_config_json_beside_the_adapter_is_used(repo, capsys):
    adapter = write_adapter(repo / "adapter", model="org/tiny")
    write_base(adapter, 4)
    code, findings = lint(["--fix", str(adapter)], capsys)
    assert code == 0 and num_layers(adapter) == 2
    assert "beside the adapter" in only(findings, "AG301")["message"]


def test_config_json_beside_the_adapter_wins_over_the_named_base(repo, capsys):
    adapter = write_adapter(repo / "adapter", model="base")
    write_base(adapter, 4)
    write_base(repo / "base", 6)
    assert main(["--fix", str(adapter)]) == 0
    assert num_layers(adapter) == 2


# -- 4: the base the adapter config names ---------------------------------------------


@pytest.mark.parametrize("key", ["model", "base_model_name_or_path"])
def test_a_named_directory_inside_the_repository_is_used(repo, capsys, key):
    adapter = write_adapter(repo / "adapter", **{key: "models/base"})
    write_base(repo / "models" / "base", 4)
    code, findings = lint(["--fix", str(adapter)], capsys)
    assert code == 0 and num_layers(adapter) == 2
    assert f"named by the adapter config's `{key}`" in only(findings, "AG301")["message"]


def test_a_named_directory_outside_the_repository_is_never_read(repo, tmp_path, capsys):
    outside = write_base(tmp_path / "elsewhere", 4)
    adapter = write_adapter(repo / "adapter", model=str(outside))
    code, findings = lint(["--fix", str(adapter)], capsys)
    assert code == 1 and num_layers(adapter) == "absent"
    assert "outside the repository" in only(findings, "AG301")["message"]


def test_a_relative_name_that_climbs_out_of_the_repository_is_never_read(repo, tmp_path, capsys):
    write_base(tmp_path / "elsewhere", 4)
    adapter = write_adapter(repo / "adapter", model="../elsewhere")
    assert main(["--fix", str(adapter)]) == 1
    assert num_layers(adapter) == "absent"


def test_a_link_inside_the_repository_to_a_base_outside_it_is_never_read(repo, tmp_path, capsys):
    (repo / "linked").symlink_to(write_base(tmp_path / "elsewhere", 4))
    adapter = write_adapter(repo / "adapter", model="linked")
    assert main(["--fix", str(adapter)]) == 1
    assert num_layers(adapter) == "absent"


# -- 4: the local Hugging Face cache --------------------------------------------------

COMMIT_MAIN = "a" * 40
COMMIT_V2 = "b" * 40


def test_a_cached_snapshot_is_found_through_refs_main(repo, tmp_path, capsys):
    from huggingface_hub import try_to_load_from_cache

    cache = tmp_path / "hf-cache"
    config = cache_snapshot(cache, "org/tiny", 4, commit=COMMIT_MAIN)
    assert try_to_load_from_cache("org/tiny", "config.json", cache_dir=cache) == str(config)  # the real reader agrees
    adapter = write_adapter(repo / "adapter", model="org/tiny")
    code, findings = lint(["--fix", str(adapter)], capsys)
    assert code == 0 and num_layers(adapter) == 2
    assert f"{config}, `org/tiny` in the local Hugging Face cache" in only(findings, "AG301")["message"]


def test_the_cache_is_found_under_hf_home(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    cache_snapshot(tmp_path / "hf-home" / "hub", "org/tiny", 4, commit=COMMIT_MAIN)
    adapter = write_adapter(repo / "adapter", base_model_name_or_path="org/tiny")
    assert main(["--fix", str(adapter)]) == 0
    assert num_layers(adapter) == 2


def test_the_revision_the_config_names_is_taken_through_its_ref(repo, tmp_path, capsys):
    from huggingface_hub import try_to_load_from_cache

    cache = tmp_path / "hf-cache"
    cache_snapshot(cache, "org/tiny", 6, commit=COMMIT_MAIN)
    v2 = cache_snapshot(cache, "org/tiny", 4, commit=COMMIT_V2, refs=("v2",))
    assert try_to_load_from_cache("org/tiny", "config.json", cache_dir=cache, revision="v2") == str(v2)
    adapter = write_adapter(repo / "adapter", base_model_name_or_path="org/tiny", base_model_revision="v2")
    assert main(["--fix", str(adapter)]) == 0
    assert num_layers(adapter) == 2


def test_the_commit_the_config_names_is_taken(repo, tmp_path, capsys):
    cache = tmp_path / "hf-cache"
    cache_snapshot(cache, "org/tiny", 6, commit=COMMIT_MAIN)
    cache_snapshot(cache, "org/tiny", 4, commit=COMMIT_V2, refs=())
    adapter = write_adapter(repo / "adapter", model="org/tiny", base_model_commit_hash=COMMIT_V2)
    assert main(["--fix", str(adapter)]) == 0
    assert num_layers(adapter) == 2


def test_a_named_revision_that_is_not_cached_is_not_replaced_by_main(repo, tmp_path, capsys):
    cache_snapshot(tmp_path / "hf-cache", "org/tiny", 4, commit=COMMIT_MAIN)
    adapter = write_adapter(repo / "adapter", model="org/tiny", base_model_revision="v3")
    code, findings = lint(["--fix", str(adapter)], capsys)
    assert code == 1 and num_layers(adapter) == "absent"
    assert "at revision 'v3' is not in the local Hugging Face cache" in only(findings, "AG301")["message"]


def test_the_lint_path_reads_the_cache_without_importing_huggingface_hub(repo, tmp_path):
    cache_snapshot(tmp_path / "hf-cache", "org/tiny", 4, commit=COMMIT_MAIN)
    adapter = write_adapter(repo / "adapter", model="org/tiny")
    script = (
        "import sys; from adapter_guard.cli import main; code = main(['--fix', sys.argv[1]]); "
        "print(code, 'huggingface_hub' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script, str(adapter)], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["0", "False"]
    assert num_layers(adapter) == 2


def test_num_layers_too_small_names_the_base_it_was_measured_against(repo, capsys):
    adapter = write_adapter(repo / "adapter", num_layers=1)
    base = write_base(repo / "base", 4)
    code, findings = lint([str(adapter), "--base-model", str(base)], capsys)
    assert code == 1
    assert f"(base config: {base / 'config.json'}, --base-model)" in only(findings, "AG302")["message"]


def test_layers_that_are_no_suffix_name_the_base(repo, capsys):
    adapter = write_adapter(repo / "adapter")
    base = write_base(repo / "base", 6)
    code, findings = lint(["--fix", str(adapter), "--base-model", str(base)], capsys)
    assert code == 1 and num_layers(adapter) == "absent"
    assert f"(base config: {base / 'config.json'}, --base-model)" in only(findings, "AG303")["message"]


def test_a_model_config_without_a_layer_count_is_still_a_base(repo, capsys):
    # GPT-2's config spells its layer count n_layer: the base is usable (PEFT's checks
    # read it), num_layers just stays unprovable from it.
    adapter = write_adapter(repo / "adapter", layers=(0, 1), num_layers=-1)
    base = repo / "gpt2"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    code, findings = lint([str(adapter), "--base-model", str(base)], capsys)
    assert (code, findings) == (0, [])


def test_a_config_json_that_is_no_model_config_is_unusable(repo, capsys):
    adapter = write_adapter(repo / "adapter", layers=(0, 1), num_layers=-1)
    base = repo / "not-a-model"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"name": "tokenizer settings"}))
    code, findings = lint([str(adapter), "--base-model", str(base)], capsys)
    assert code == 1 and "neither a model_type nor a layer count" in only(findings, "AG310")["message"]


# -- the per-run lookups: the same answers, bounded -------------------------------------


def _directory_inside_resolving_everything(name: str, adapter_dir: Path, root: Path):
    """The lookup before the lstat shortcut: every candidate resolved (the reference)."""
    import os

    try:
        path = Path(name).expanduser()
    except RuntimeError:
        return None, ""
    candidates = [path] if path.is_absolute() else [root / path, adapter_dir / path]
    root = root.resolve()
    outside = None
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
            if not resolved.is_dir():
                continue
            if not resolved.is_relative_to(root):
                outside = candidate
                continue
            if os.path.lexists(resolved / "config.json"):
                return resolved, ""
        except (OSError, RuntimeError, ValueError):
            continue
    if outside is not None:
        return None, f"`{name}` is a directory outside the repository (`{root}`), which is never read"
    return None, ""


def test_a_named_base_directory_is_found_exactly_as_by_resolving_every_candidate(repo, tmp_path):
    """Names that are missing, files, links (to a base, outside, through `missing/..`, in a
    loop), with `..`, relative and absolute: the shortcut gives the reference's answer."""
    import itertools
    import os

    from adapter_guard import readers
    from adapter_guard.base import _directory_inside, run_cache

    adapter = write_adapter(repo / "adapters" / "one")
    write_base(repo / "base", 4)
    write_base(adapter / "beside", 4)
    write_base(tmp_path / "elsewhere", 4)
    (repo / "file").write_text("{}")
    (repo / "empty").mkdir()
    (repo / "link-base").symlink_to("base")
    (repo / "link-out").symlink_to(tmp_path / "elsewhere")
    (repo / "link-odd").symlink_to("missing/../base")  # resolve() finds base; the kernel does not
    (repo / "loop").symlink_to("loop")
    (adapter / "up").symlink_to("../..")
    parts = ["base", "beside", "missing", "file", "empty", "link-base", "link-out", "link-odd", "loop", "up",
             "..", ".", "config.json", "org"]
    names = ["/".join(combo) for n in (1, 2, 3) for combo in itertools.product(parts, repeat=n)]
    names += [str(repo / name) for name in names[: len(parts) ** 2]] + [str(tmp_path / "elsewhere"), "~", "~nobody-here/x"]
    listing = readers.listing(list(os.scandir(adapter)))  # what discovery hands on
    with run_cache():
        for name in names:
            for adapter_dir in (adapter, Path("adapters/one"), Path("adapters/../adapters/one")):
                expected = _directory_inside_resolving_everything(name, adapter_dir, repo)
                assert _directory_inside(name, adapter_dir, repo) == expected, (name, adapter_dir)
                assert _directory_inside(name, adapter_dir, repo, listing) == expected, (name, adapter_dir)


def test_snapshot_lookups_are_kept_for_one_run_only_and_never_more_than_the_bound(repo, tmp_path):
    from adapter_guard import base

    cache = tmp_path / "hf-cache"
    ids = [f"org/model-{i}" for i in range(base.MAX_RUN_ENTRIES + 200)]
    expected = [base.cached_snapshot(repo_id) for repo_id in ids]  # outside a run: nothing kept
    assert base._RUN is None
    with base.run_cache():
        assert [base.cached_snapshot(repo_id) for repo_id in ids] == expected
        assert len(base._RUN) == base.MAX_RUN_ENTRIES
        # Kept for the run: a snapshot that appears during it is seen from the next run on.
        cache_snapshot(cache, "org/model-0", 4, commit="a" * 40)
        assert base.cached_snapshot("org/model-0") == expected[0]
        # Past the bound, nothing is kept: looked up afresh.
        cache_snapshot(cache, f"org/model-{len(ids) - 1}", 4, commit="a" * 40)
        assert base.cached_snapshot(ids[-1])[0] is not None
    assert base._RUN is None
    assert base.cached_snapshot("org/model-0")[0] == cache / "models--org--model-0" / "snapshots" / ("a" * 40)


def test_a_revision_longer_than_the_bound_is_never_kept(repo, tmp_path):
    from adapter_guard import base

    revision = "/".join(["r" * 100] * 3)  # longer than the bound, each part a valid file name
    assert len(revision) > base.MAX_CACHED_REVISION
    with base.run_cache():
        first = base.cached_snapshot("org/tiny", revision)
        assert first[0] is None and base._RUN == {}
        cache_snapshot(tmp_path / "hf-cache", "org/tiny", 4, commit="b" * 40, refs=(revision,))
        assert base.cached_snapshot("org/tiny", revision)[0] is not None
