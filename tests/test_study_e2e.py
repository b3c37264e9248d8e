"""The Turing test through the real app (``python app.py`` in a subprocess) and gradio_client.

- full sessions played by several clients at once, then the database holds exactly
  the answers that were given;
- what a trial sends identifies nothing, and its two images differ only in ab;
- a small load run (the full 20 x 50 is ``scripts/load_study.py``), and a SIGKILL of
  the server mid-load leaves a clean database with every acknowledged judgment.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import random
import sqlite3
import struct
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
N_PRACTICE, N_TEST = 4, 10


def _load_script():
    """``scripts/load_study.py`` as a module (it holds the app launcher and the load driver)."""
    name = "colorbench_scripts_load_study"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "load_study.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses look their module up while the file executes
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="module")
def load_study():
    return _load_script()


@pytest.fixture(scope="module")
def app(load_study, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study_app")
    cfg = load_study.write_config(tmp / "study.json", name="e2e", n_images=6, image_size=256,
                                  n_practice=N_PRACTICE, n_test=N_TEST, vigilance_fraction=0.2)
    with load_study.launch_app(tmp / "data", cfg) as proc:
        yield proc


def _ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)


def _png(url: str) -> bytes:
    head, _, b64 = url.partition(",")
    assert head == "data:image/png;base64"
    return base64.b64decode(b64)


def _chunks(png: bytes) -> set:
    pos, out = 8, set()
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        out.add(kind.decode())
        pos += 12 + n
    return out


def _rgb(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_full_sessions_through_gradio_client_are_exactly_in_the_store(app):
    from gradio_client import Client

    given = {}  # trial_id -> (participant_id, choice)
    feedback = {}  # trial_id -> correct as told to the participant (practice only)
    scores = {}
    errors = []
    lock = threading.Lock()

    def participant(seed: int) -> None:
        try:
            rng = random.Random(seed)
            client = Client(app.url, verbose=False)
            r = client.predict(True, api_name="/study_start")
            pid, trial = r["participant_id"], r["trial"]
            assert (r["n_practice"], r["n_test"]) == (N_PRACTICE, N_TEST)
            while trial is not None:
                choice = rng.choice(["left", "right"])
                a = client.predict(pid, trial["trial_id"], choice, api_name="/study_answer")
                with lock:
                    given[trial["trial_id"]] = (pid, choice)
                    if a["correct"] is not None:
                        feedback[trial["trial_id"]] = a["correct"]
                    if a["done"]:
                        scores[pid] = a["score"]
                trial = a["next"]
        except Exception as e:  # reported below with the others
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=participant, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    assert len(scores) == 3 and len(given) == 3 * (N_PRACTICE + N_TEST)

    con = _ro(app.db)
    rows = con.execute("SELECT j.trial_id, j.participant_id, j.choice, j.correct, t.fake_side, t.phase, "
                       "j.response_ms FROM judgments j JOIN trials t ON t.id = j.trial_id "
                       "WHERE j.participant_id IN (%s)" % ",".join("?" * len(scores)), list(scores)).fetchall()
    stored = {r[0]: (r[1], r[2]) for r in rows}
    assert stored == given  # exactly the answers given: same trials, same participants, same choices
    for trial_id, _pid, choice, correct, fake_side, phase, response_ms in rows:
        assert correct == int(choice == fake_side)
        assert response_ms > 0
        if phase == "practice":
            assert feedback[trial_id] == bool(correct)
        else:
            assert trial_id not in feedback  # no feedback on test pairs
    for pid, score in scores.items():
        n_right = sum(r[3] for r in rows if r[1] == pid and r[5] == "test")
        assert score == {"correct": n_right, "total": N_TEST}
    ended = con.execute("SELECT COUNT(*) FROM participants WHERE ended_at IS NOT NULL AND id IN (%s)"
                        % ",".join("?" * len(scores)), list(scores)).fetchone()[0]
    assert ended == 3


def test_refused_votes_change_nothing(app):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(app.url, verbose=False)
    with pytest.raises(AppError, match="consent"):
        client.predict(False, api_name="/study_start")
    r = client.predict(True, api_name="/study_start")
    pid, tid = r["participant_id"], r["trial"]["trial_id"]
    before = _ro(app.db).execute("SELECT COUNT(*) FROM judgments").fetchone()[0]
    for args in [(pid, tid, "both"), (pid, "A" * 22, "left"), ("B" * 22, tid, "left"), (pid, tid, "")]:
        with pytest.raises(AppError):
            client.predict(*args, api_name="/study_answer")
    assert _ro(app.db).execute("SELECT COUNT(*) FROM judgments").fetchone()[0] == before
    client.predict(pid, tid, "right", api_name="/study_answer")
    with pytest.raises(AppError, match="already been answered"):
        client.predict(pid, tid, "left", api_name="/study_answer")
    assert _ro(app.db).execute("SELECT choice FROM judgments WHERE trial_id = ?", (tid,)).fetchall() == [("right",)]


def test_trial_data_identifies_nothing_and_images_differ_only_in_ab(app):
    from gradio_client import Client
    from skimage.color import rgb2lab

    client = Client(app.url, verbose=False)
    r = client.predict(True, api_name="/study_start")
    pid, trial = r["participant_id"], r["trial"]
    manifest = json.loads(next((app.data_dir / "study_stimuli").glob("e2e-*/manifest.json")).read_text())
    leaks = ["gray", "random", "real", "fake", "model", "opencv", "skimage", ".png", ".jpg", "/",
             *manifest["images"], *manifest["sha256"]]
    con = _ro(app.db)
    ids = set()
    while trial is not None:
        assert set(trial) == {"trial_id", "phase", "number", "of", "exposure_ms", "left", "right"}
        meta = json.dumps({k: v for k, v in trial.items() if k not in ("left", "right")})
        assert not [w for w in leaks if w in meta]
        ids.add(trial["trial_id"])
        left, right = _png(trial["left"]), _png(trial["right"])
        assert _chunks(left) == _chunks(right) == {"IHDR", "IDAT", "IEND"}  # no metadata chunk at all
        a, b = _rgb(left), _rgb(right)
        assert a.shape == b.shape == (256, 256, 3)
        la, lb = rgb2lab(a), rgb2lab(b)
        assert np.abs(la[..., 0] - lb[..., 0]).max() < 1.0  # same lightness up to uint8 rounding
        assert np.abs(la[..., 1:] - lb[..., 1:]).mean() > 1.0  # the colour differs
        kind, fake_side = con.execute("SELECT kind, fake_side FROM trials WHERE id = ?",
                                      (trial["trial_id"],)).fetchone()
        if kind == "model":  # the gray fake has no chroma: the pixels agree with the server's record
            chroma = {"left": np.abs(la[..., 1:]).max(), "right": np.abs(lb[..., 1:]).max()}
            assert chroma[fake_side] < 1.0 < chroma["left" if fake_side == "right" else "right"]
        trial = client.predict(pid, trial["trial_id"], "left", api_name="/study_answer")["next"]
    assert len(ids) == N_PRACTICE + N_TEST and all(len(i) >= 22 for i in ids)


def test_small_load_gives_exact_rows_and_no_errors(app, load_study):
    before = _ro(app.db).execute("SELECT COUNT(*) FROM judgments").fetchone()[0]
    res = load_study.run_load(app.url, participants=6, judgments=N_PRACTICE + N_TEST, deadline_s=300)
    assert res.errors == []
    assert len(res.acknowledged) == 6 * (N_PRACTICE + N_TEST)
    report = load_study.check_db(app.db, res.acknowledged)
    assert report["integrity"] == "ok" and report["acknowledged_missing"] == 0 and report["duplicates"] == 0
    assert report["rows"] == before + 6 * (N_PRACTICE + N_TEST)


def test_kill9_mid_load_leaves_clean_db_with_every_acknowledged_judgment(load_study, tmp_path):
    cfg = load_study.write_config(tmp_path / "study.json", name="kill", n_images=4, image_size=64,
                                  n_practice=N_PRACTICE, n_test=N_TEST)
    with load_study.launch_app(tmp_path / "data", cfg) as proc:
        res = load_study.run_load(proc.url, participants=6, judgments=N_PRACTICE + N_TEST, deadline_s=300,
                                  kill=(30, proc))
        assert proc.proc.returncode == -9  # really killed, no shutdown code ran
    assert len(res.acknowledged) >= 30
    assert len(res.acknowledged) < 6 * (N_PRACTICE + N_TEST)  # killed mid-load
    # the WAL is left beside the database: opening it recovers the committed transactions
    report = load_study.check_db(proc.db, res.acknowledged)
    assert report["integrity"] == "ok"
    assert report["acknowledged_missing"] == 0 and report["duplicates"] == 0
    assert report["rows"] >= len(res.acknowledged)
