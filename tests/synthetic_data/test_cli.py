"""Tests of ``socialcart generate``: output files, exit codes and nothing half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

import recommender.dataset
from recommender.dataset import Dataset
from socialcart.cli import app
from synthetic_data import generate, make_config

EXIT_BAD_INPUT = 2
TABLE_FILES = (
    "users.parquet",
    "follows.parquet",
    "posts.parquet",
    "products.parquet",
    "interactions.parquet",
    "groups.parquet",
    "group_members.parquet",
)
CJK = "[\u4e00-\u9fff]"
QUICK = ("--preset", "tiny", "--set", "n_users=200", "--set", "n_days=3", "--no-card")
"""A tiny run made quicker, for tests about directories rather than data."""


def run_generate(*args: str) -> Result:
    # A wide terminal keeps Rich from wrapping messages in the middle of a path.
    return CliRunner().invoke(app, ["generate", *args], env={"COLUMNS": "250"})


def one_line(result: Result) -> str:
    return " ".join(result.output.split())


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def seed1_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``socialcart generate --preset tiny --seed 1 --out DIR``, data card included."""
    out = tmp_path_factory.mktemp("cli") / "tiny-seed1"
    result = run_generate("--preset", "tiny", "--seed", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in one_line(result)
    return out


# ------------------------------------------------------------------ success
def test_generate_writes_the_dataset_and_its_card(seed1_dir: Path) -> None:
    for name in (*TABLE_FILES, "manifest.json", "data_card.md"):
        assert (seed1_dir / name).is_file(), name
    assert (seed1_dir / "ground_truth" / "purchase_causes.parquet").is_file()
    assert manifest(seed1_dir)["config"] == make_config("tiny", seed=1).to_dict()
    assert len(Dataset.load(seed1_dir).users) == 1000


def test_cli_writes_what_the_library_generates(seed1_dir: Path, tmp_path: Path) -> None:
    library = generate(make_config("tiny", seed=1)).save(tmp_path / "lib")
    written = {k: v for k, v in files(seed1_dir).items() if not k.startswith("data_card")}
    assert written == files(library)


def test_no_card_writes_no_card(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_generate(*QUICK, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file()
    assert not list(out.glob("data_card*"))


def test_lang_zh(tmp_path: Path) -> None:
    out = tmp_path / "zh"
    result = run_generate(*QUICK, "--lang", "zh", "--out", str(out))
    assert result.exit_code == 0, result.output
    dataset = Dataset.load(out)
    assert dataset.manifest["config"]["lang"] == "zh"
    assert dataset.users["handle"].str.contains(CJK).all()
    assert dataset.products["title"].str.contains(CJK).all()


def test_config_file_then_set_then_seed(tmp_path: Path) -> None:
    config = tmp_path / "knobs.toml"
    config.write_text(
        "[generator]\nn_users = 300\nn_products = 500\nn_days = 3\nseed = 8\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    result = run_generate(
        "--preset",
        "tiny",
        "--config",
        str(config),
        "--set",
        "n_products=400",
        "--seed",
        "2",
        "--out",
        str(out),
        "--no-card",
    )
    assert result.exit_code == 0, result.output
    recorded = manifest(out)["config"]
    assert (recorded["n_users"], recorded["n_products"], recorded["n_days"]) == (300, 400, 3)
    assert recorded["seed"] == 2  # --seed always applies (its default is 0)
    assert manifest(out)["row_counts"]["users"] == 300


def test_empty_existing_directory_needs_no_force(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    result = run_generate(*QUICK, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").is_file()


# -------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "n_users=-5"], "n_users == -5, must be"),
        (["--set", "reciprocity=1.5"], "reciprocity == 1.5, must be a probability in [0, 1]."),
        (["--preset", "huge"], "unknown preset 'huge'; presets are tiny, small, medium, large"),
        (["--set", "bogus=1"], "unknown configuration key 'bogus'"),
        (["--set", "n_users=abc"], "n_users == 'abc', must be an integer."),
        (["--set", "n_users"], "--set 'n_users': expected key=value"),
        (["--lang", "fr"], "lang == 'fr', must be one of en, zh."),
        (["--config", "missing.toml"], "config file 'missing.toml' does not exist"),
    ],
)
def test_bad_configuration_exits_2_and_writes_nothing(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    result = run_generate("--preset", "tiny", *args, "--out", str(out))
    assert result.exit_code == EXIT_BAD_INPUT
    assert f"error: {message}" in one_line(result)
    assert "Traceback" not in result.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_non_empty_output_directory_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    result = run_generate("--preset", "tiny", "--out", str(out), "--no-card")
    assert result.exit_code == EXIT_BAD_INPUT
    assert f"error: --out {out} exists and is not empty; use --force" in one_line(result)
    assert files(out) == {"notes.txt": b"keep me"}


def test_force_replaces_a_non_empty_output_directory(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("old", encoding="utf-8")
    result = run_generate(*QUICK, "--out", str(out), "--force")
    assert result.exit_code == 0, result.output
    assert not (out / "notes.txt").exists()
    Dataset.load(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no backup left behind


def test_output_path_that_is_a_file_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("a file", encoding="utf-8")
    result = run_generate("--preset", "tiny", "--out", str(out), "--force")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "exists and is not a directory" in one_line(result)
    assert out.read_text(encoding="utf-8") == "a file"


def test_non_finite_value_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_generate("--preset", "tiny", "--set", "views_per_user_day=inf", "--out", str(out))
    assert result.exit_code == EXIT_BAD_INPUT
    assert "error: views_per_user_day == inf" in one_line(result)
    assert not out.exists()


# ------------------------------------------------------ nothing half-written
class SimulatedDiskFull(OSError):
    pass


@pytest.fixture
def save_fails_midway(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``Dataset.save`` fail after writing two Parquet files."""
    real_write = recommender.dataset._write_table
    calls = []

    def write_then_fail(*args, **kwargs):
        calls.append(args)
        if len(calls) > 2:
            raise SimulatedDiskFull("no space left on device")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(recommender.dataset, "_write_table", write_then_fail)


@pytest.mark.usefixtures("save_fails_midway")
def test_a_failed_save_leaves_no_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_generate(*QUICK, "--out", str(out))
    assert result.exit_code != 0
    assert isinstance(result.exception, SimulatedDiskFull)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no out, no temporary directory


@pytest.mark.usefixtures("save_fails_midway")
def test_a_failed_forced_save_keeps_the_old_dataset(tiny_en_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(tiny_en_dir, out)
    before = files(out)
    result = run_generate(*QUICK, "--seed", "3", "--out", str(out), "--force")
    assert result.exit_code != 0
    assert isinstance(result.exception, SimulatedDiskFull)
    assert files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
