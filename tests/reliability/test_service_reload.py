"""A reload pointed at a directory that is not a loadable model fails with a clear error
(422 naming the directory); the old model keeps serving and no request fails, with readers
running all along."""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import API_KEY


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _edit_meta(model: Path, change: Callable[[dict], object]) -> None:
    meta = json.loads((model / "model.json").read_text())
    result = change(meta)
    (model / "model.json").write_text(json.dumps(meta if result is None else result))


def bad_models(source: Path, root: Path) -> dict[str, tuple[Path, str]]:
    """Broken copies of a model directory: name -> (directory, a pattern of what the error
    must say besides the directory's path)."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(source, root / name))

    root.mkdir()
    out: dict[str, tuple[Path, str]] = {}
    out["missing"] = (root / "missing", "no model.json")
    (root / "empty").mkdir()
    out["empty directory"] = (root / "empty", "no model.json")
    (root / "a-file").write_text("not a model")
    out["a file"] = (root / "a-file", "no model.json")
    _truncate(copy("truncated-json") / "model.json")
    out["truncated model.json"] = (root / "truncated-json", "model.json")
    (copy("empty-json") / "model.json").write_bytes(b"")
    out["empty model.json"] = (root / "empty-json", "model.json")
    _edit_meta(copy("json-list"), lambda meta: [meta])
    out["model.json not an object"] = (root / "json-list", "json-list")
    _edit_meta(copy("version-99"), lambda meta: meta.update(format_version=99))
    out["format version 99"] = (root / "version-99", "format version 99")
    _edit_meta(copy("version-none"), lambda meta: meta.update(format_version=None))
    out["no format version"] = (root / "version-none", "format version None")
    _edit_meta(copy("other-dataset"), lambda meta: meta.update(dataset_checksum="0" * 64))
    out["another dataset"] = (root / "other-dataset", "trained on dataset")
    _edit_meta(copy("bad-params"), lambda meta: meta["params"].update(no_such_param=1))
    out["unknown hyperparameter"] = (root / "bad-params", "bad-params")
    _edit_meta(copy("bad-class"), lambda meta: meta.update({"class": "os.system"}))
    out["unknown class"] = (root / "bad-class", "unknown model class")
    arrays = sorted((source / "sources").glob("*/arrays.npz"))
    for npz in arrays:
        name = f"truncated-{npz.parent.name}-arrays"
        _truncate(root / copy(name) / npz.relative_to(source))
        out[f"truncated {npz.parent.name}/arrays.npz"] = (root / name, "arrays.npz|BadZipFile")
    (copy("garbage-arrays") / arrays[0].relative_to(source)).write_bytes(b"\x00" * 1000)
    out["garbage arrays.npz"] = (root / "garbage-arrays", "arrays.npz")
    _truncate(copy("truncated-ranker") / "ranker.skops")
    out["truncated ranker"] = (root / "truncated-ranker", "ranker.skops|BadZipFile")
    shutil.rmtree(copy("no-social") / "sources" / "social")
    out["a source directory deleted"] = (root / "no-social", "no-social")
    (copy("no-ranker") / "ranker.skops").unlink()
    out["ranker deleted"] = (root / "no-ranker", "ranker.skops")
    copy("no-dataset")
    out["dataset missing"] = (root / "no-dataset", "nowhere")
    return out


def test_bad_reloads_keep_the_old_model_serving(tmp_path, make_settings, service_data) -> None:
    cases = bad_models(service_data.model_dir, tmp_path / "models")
    settings = make_settings(tmp_path, api_key=API_KEY)
    key = {"X-API-Key": API_KEY}
    # Server errors come back as 500 answers, as a client would see them.
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        version = c.get("/healthz").headers["x-model-version"]
        stop = threading.Event()
        reads: list[tuple[int, str]] = []

        def reader(user: int) -> None:
            paths = [
                f"/v1/users/{user}/recommendations",
                f"/v1/products/{user}/similar",
                f"/v1/users/{user}/share-targets?product_id=3",
                f"/v1/users/{user}",
            ]
            n = 0
            while not stop.is_set() or n < len(paths):
                r = c.get(paths[n % len(paths)])
                reads.append((r.status_code, r.headers.get("x-model-version", "")))
                n += 1

        answers = {}
        with ThreadPoolExecutor(3) as pool:
            readers = [pool.submit(reader, u) for u in (80, 81, 82)]
            try:
                for name, (model_dir, _) in cases.items():
                    body = {"model_dir": str(model_dir)}
                    if name == "dataset missing":
                        body["dataset_dir"] = str(tmp_path / "nowhere")
                    answers[name] = c.post("/v1/admin/reload", json=body, headers=key)
            finally:
                stop.set()
                for f in readers:
                    f.result()

        wrong = {
            name: (answers[name].status_code, answers[name].json()["detail"])
            for name in cases
            if answers[name].status_code != 422
        }
        assert wrong == {}
        for name, (model_dir, says) in cases.items():
            r = answers[name]
            assert r.status_code == 422, (name, r.status_code, r.text)
            body = r.json()
            assert body["error"] == "invalid_request", name
            assert body["detail"].startswith("cannot load the model: "), (name, body)
            assert re.search(says, body["detail"]), (name, body["detail"])
            named = str(tmp_path / "nowhere") if name == "dataset missing" else str(model_dir)
            assert named in body["detail"], (name, body["detail"])
            assert r.headers["x-model-version"] == version, name
        assert reads and {code for code, _ in reads} == {200}, reads
        assert {v for _, v in reads} == {version}
        metrics = c.get("/metrics").text
        assert f'socialcart_model_reloads_total{{outcome="failed"}} {len(cases)}.0' in metrics
        # The old model still takes writes and reloads.
        r = c.post("/v1/follows", json={"follower_id": 83, "followee_id": 84}, headers=key)
        assert r.status_code == 201
        r = c.post("/v1/admin/reload", headers=key)
        assert r.status_code == 200 and r.json()["model_version"] == version
        assert r.json()["replayed"] == 1
    print(
        f"\nRELIABILITY reload: {len(cases)} bad reloads, {len(reads)} concurrent reads, "
        f"{sum(code != 200 for code, _ in reads)} failed"
    )
