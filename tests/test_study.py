"""Unit tests of the study: config, stimuli integrity, store, protocol, statistics, CLI, sync."""

from __future__ import annotations

import base64
import io
import json
import logging
import sqlite3
import struct

import numpy as np
import pytest

from colorbench.study import stats
from colorbench.study.config import REPO_DEFAULT_CONFIG, StudyConfig, load_config
from colorbench.study.session import MIXED, StudyService
from colorbench.study.stimuli import build_stimuli, load_built, prepare_photo
from colorbench.study.store import SCHEMA_VERSION, Refused, Store
from colorbench.study.sync import JudgmentSync

SMALL = dict(name="unit", dataset="builtin", models=("gray",), vigilance_model="random", n_images=4,
             image_size=48, n_practice=3, n_test=10, vigilance_fraction=0.2, min_response_ms=300,
             max_answers_per_minute=0, max_sessions_per_ip_per_hour=0, max_answers_per_ip_per_minute=0)


class Clock:
    """A settable clock (seconds)."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("stimuli")
    return load_built(build_stimuli(StudyConfig(**SMALL), root))


def make_service(built, tmp_path, clock=None, **overrides):
    config = StudyConfig(**{**SMALL, **overrides})
    return StudyService(config, Store(tmp_path / "study.sqlite"), built, clock=clock or Clock())


def decode_data_url(url: str) -> bytes:
    head, _, b64 = url.partition(",")
    assert head == "data:image/png;base64"
    return base64.b64decode(b64)


def png_chunks(png: bytes) -> list:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        out.append(kind.decode())
        pos += 12 + n
    return out


def rgb_of(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def play(svc, pid, trial, choose):
    """Answer every pair with ``choose(k, trial) -> side``; returns the answer responses."""
    out = []
    k = 0
    while trial is not None:
        a = svc.answer(pid, trial["trial_id"], choose(k, trial))
        out.append((trial, a))
        trial = a["next"]
        k += 1
    return out


# --------------------------------------------------------------------------- config


def test_default_config_replicates_zhang2016():
    c = load_config(REPO_DEFAULT_CONFIG)
    assert (c.image_size, c.n_practice, c.n_test, c.exposure_ms) == (256, 10, 40, 1000)
    assert c.vigilance_model == "random" and not c.mixed
    assert c.n_vigilance == 4  # ~10% of 40


def test_config_formats_agree_and_unknown_keys_are_refused(tmp_path):
    data = {"name": "x", "models": ["gray"], "n_test": 20, "exposure_ms": 500}
    (tmp_path / "a.json").write_text(json.dumps(data))
    (tmp_path / "a.toml").write_text('name = "x"\nmodels = ["gray"]\nn_test = 20\nexposure_ms = 500\n')
    (tmp_path / "a.yaml").write_text("name: x\nmodels: [gray]\nn_test: 20\nexposure_ms: 500\n")
    configs = [load_config(tmp_path / f"a.{ext}") for ext in ("json", "toml", "yaml")]
    assert configs[0] == configs[1] == configs[2]
    assert configs[0].models == ("gray",) and configs[0].n_vigilance == 2
    (tmp_path / "b.json").write_text(json.dumps({**data, "exposure": 3}))
    with pytest.raises(ValueError, match="unknown study config keys: exposure"):
        load_config(tmp_path / "b.json")
    with pytest.raises(ValueError, match="vigilance"):
        StudyConfig(models=("random",))


# --------------------------------------------------------------------------- stimuli integrity


def test_stimuli_pairs_differ_only_in_ab(built):
    """Real and fake share L (independent reference: scikit-image's rgb2lab), differ in ab."""
    from skimage.color import rgb2lab

    from colorbench.data import load_dataset

    items = {it.id: it for it in load_dataset("builtin")}
    for image_id in built.images:
        real = rgb_of(built.png(built.stimulus(image_id, "real")))
        assert real.shape == (48, 48, 3)
        # the "real" image is the resized photo itself, up to uint8 rounding of the Lab round trip
        photo = prepare_photo(items[image_id].rgb, 48)
        assert np.abs(real.astype(int) - photo.astype(int)).max() <= 2
        lab_real = rgb2lab(real)
        for model in ("gray", "random"):
            fake = rgb_of(built.png(built.stimulus(image_id, model)))
            lab_fake = rgb2lab(fake)
            assert np.abs(lab_fake[..., 0] - lab_real[..., 0]).max() < 1.0, (image_id, model)
            assert np.abs(lab_fake[..., 1:] - lab_real[..., 1:]).mean() > 1.0, (image_id, model)
        gray = rgb2lab(rgb_of(built.png(built.stimulus(image_id, "gray"))))
        assert np.abs(gray[..., 1:]).max() < 1.0  # the gray model's fake has no colour


def test_stimulus_files_are_random_ids_without_metadata(built):
    files = sorted((built.path / "stimuli").iterdir())
    assert len(files) == len(built.images) * 3  # real + gray + random
    for f in files:
        assert len(f.stem) == 32 and int(f.stem, 16) >= 0
        assert set(png_chunks(f.read_bytes())) == {"IHDR", "IDAT", "IEND"}  # no tEXt/eXIf/iCCP/tIME
    names = " ".join(f.name for f in files)
    for word in ["gray", "random", "real", *built.images]:
        assert word not in names


def test_trial_payload_identifies_nothing(built, tmp_path):
    svc = make_service(built, tmp_path)
    r = svc.start(True, "10.0.0.1", "pytest")
    seen_ids = set()
    leaks = ["gray", "random", "real", "fake", "model", "image_id", ".png", ".jpg", *built.images,
             *built.manifest["sha256"]]
    trial = r["trial"]
    con = sqlite3.connect(tmp_path / "study.sqlite")
    while trial is not None:
        assert set(trial) == {"trial_id", "phase", "number", "of", "exposure_ms", "left", "right"}
        meta = json.dumps({k: v for k, v in trial.items() if k not in ("left", "right")})
        for word in leaks:
            assert word not in meta
        assert len(trial["trial_id"]) >= 22 and trial["trial_id"] not in seen_ids
        seen_ids.add(trial["trial_id"])
        pngs = {s: decode_data_url(trial[s]) for s in ("left", "right")}
        for png in pngs.values():
            assert set(png_chunks(png)) == {"IHDR", "IDAT", "IEND"}
        # the side with no chroma is the gray fake or, on vigilance pairs, the real one is the
        # less saturated; check the server's record against the pixels for model pairs
        kind, fake_side = con.execute("SELECT kind, fake_side FROM trials WHERE id = ?",
                                      (trial["trial_id"],)).fetchone()
        if kind == "model":
            chroma = {s: np.ptp(rgb_of(p).astype(int), axis=2).max() for s, p in pngs.items()}
            assert chroma[fake_side] <= 1 and chroma["left" if fake_side == "right" else "right"] > 10
        trial = svc.answer(r["participant_id"], trial["trial_id"], "left")["next"]
    # left/right is drawn per trial: both sides occur over a session (13 pairs)
    sides = {s for (s,) in con.execute("SELECT fake_side FROM trials")}
    assert sides == {"left", "right"}


# --------------------------------------------------------------------------- store


def test_store_schema_wal_and_durability_settings(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    con = store.connection()
    assert store.schema_version == SCHEMA_VERSION
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert con.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with pytest.raises(ValueError):
        Store(tmp_path / "x.sqlite", synchronous="OFF")


def test_store_refuses_newer_schema(tmp_path):
    p = tmp_path / "s.sqlite"
    sqlite3.connect(p).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="schema version"):
        Store(p).connection()


def test_second_judgment_refused_by_app_and_by_database(built, tmp_path):
    svc = make_service(built, tmp_path)
    r = svc.start(True, "10.0.0.1", "ua")
    pid, tid = r["participant_id"], r["trial"]["trial_id"]
    svc.answer(pid, tid, "left")
    with pytest.raises(Refused) as e:
        svc.answer(pid, tid, "right")
    assert e.value.code == "already_answered"
    con = sqlite3.connect(tmp_path / "study.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        con.execute("INSERT INTO judgments (trial_id, participant_id, choice, correct, response_ms, created_at) "
                    "VALUES (?, ?, 'right', 0, 1, 1)", (tid, pid))
    assert con.execute("SELECT COUNT(*), MIN(choice) FROM judgments").fetchone() == (1, "left")


@pytest.mark.parametrize("bad", [
    dict(choice="middle"), dict(choice=1), dict(choice=None), dict(trial="other"), dict(trial="future"),
    dict(trial="x" * 500), dict(pid="nobody-at-all"), dict(pid=None), dict(pid="'; DROP TABLE judgments; --"),
])
def test_invalid_answers_are_refused_and_store_nothing(built, tmp_path, bad):
    svc = make_service(built, tmp_path)
    a = svc.start(True, "10.0.0.1", "ua")
    b = svc.start(True, "10.0.0.2", "ua")
    con = sqlite3.connect(tmp_path / "study.sqlite")
    future = con.execute("SELECT id FROM trials WHERE participant_id = ? AND idx = 2",
                         (a["participant_id"],)).fetchone()[0]
    trial = {"other": b["trial"]["trial_id"], "future": future}.get(bad.get("trial"), bad.get("trial"))
    args = (bad.get("pid", a["participant_id"]), trial or a["trial"]["trial_id"], bad.get("choice", "left"))
    with pytest.raises(Refused):
        svc.answer(*args)
    assert con.execute("SELECT COUNT(*) FROM judgments").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM trials").fetchone()[0] == 2 * 13


@pytest.mark.parametrize("consent", [False, None, "true", 1, "yes"])
def test_start_requires_literal_consent(built, tmp_path, consent):
    svc = make_service(built, tmp_path)
    with pytest.raises(Refused) as e:
        svc.start(consent, "10.0.0.1", "ua")
    assert e.value.code == "no_consent"
    assert svc.store.count("participants") == 0


def test_response_time_is_measured_on_the_server_and_fast_answers_flagged(built, tmp_path):
    clock = Clock()
    svc = make_service(built, tmp_path, clock=clock)
    r = svc.start(True, "10.0.0.1", "ua")
    pid, trial = r["participant_id"], r["trial"]
    clock.t += 0.120
    trial = svc.answer(pid, trial["trial_id"], "left")["next"]
    clock.t += 2.5
    svc.answer(pid, trial["trial_id"], "right")
    rows = svc.store.judgment_rows()
    assert [round(x["response_ms"]) for x in rows] == [120, 2500]
    assert [x["flags"] for x in rows] == ["fast", ""]


def test_participant_row_keeps_hash_not_ip_and_truncates_user_agent(built, tmp_path):
    svc = make_service(built, tmp_path)
    r = svc.start(True, "203.0.113.7", "x" * 1000)
    con = sqlite3.connect(tmp_path / "study.sqlite")
    ip_hash, ua = con.execute("SELECT ip_hash, user_agent FROM participants").fetchone()
    assert "203.0.113.7" not in ip_hash and len(ip_hash) == 32 and len(ua) == 300
    dump = "\n".join(con.iterdump())
    assert "203.0.113.7" not in dump
    # same IP, same hash (rate limits work); different database, different salt
    assert svc.store.ip_hash("203.0.113.7") == ip_hash
    assert Store(tmp_path / "other.sqlite").ip_hash("203.0.113.7") != ip_hash
    assert r["participant_id"] in dump


def test_rate_limits_per_session_and_per_ip(built, tmp_path):
    clock = Clock()
    svc = make_service(built, tmp_path, clock=clock, max_answers_per_minute=3, max_sessions_per_ip_per_hour=2)
    r = svc.start(True, "10.0.0.9", "ua")
    pid, trial = r["participant_id"], r["trial"]
    for _ in range(3):
        clock.t += 1.0
        trial = svc.answer(pid, trial["trial_id"], "left")["next"]
    clock.t += 1.0
    with pytest.raises(Refused) as e:
        svc.answer(pid, trial["trial_id"], "left")
    assert e.value.code == "rate_session"
    clock.t += 61.0  # the window has passed
    svc.answer(pid, trial["trial_id"], "left")
    svc.start(True, "10.0.0.9", "ua")
    with pytest.raises(Refused) as e:
        svc.start(True, "10.0.0.9", "ua")
    assert e.value.code == "rate_ip_sessions"
    svc.start(True, "10.0.0.10", "ua")  # another address is not limited
    clock.t += 3601.0
    svc.start(True, "10.0.0.9", "ua")
    assert svc.store.count("participants") == 4


def test_per_ip_answer_limit_spans_sessions(built, tmp_path):
    clock = Clock()
    svc = make_service(built, tmp_path, clock=clock, max_answers_per_ip_per_minute=4)
    sessions = [svc.start(True, "10.0.0.5", "ua") for _ in range(2)]
    trials = [s["trial"] for s in sessions]
    for k in range(2):
        for i, s in enumerate(sessions):
            clock.t += 0.5
            trials[i] = svc.answer(s["participant_id"], trials[i]["trial_id"], "left")["next"]
    with pytest.raises(Refused) as e:
        svc.answer(sessions[0]["participant_id"], trials[0]["trial_id"], "left")
    assert e.value.code == "rate_ip"


# --------------------------------------------------------------------------- protocol


def test_session_protocol_practice_feedback_vigilance_and_score(built, tmp_path):
    svc = make_service(built, tmp_path)
    r = svc.start(True, "10.0.0.1", "ua")
    assert (r["n_practice"], r["n_test"]) == (3, 10)
    played = play(svc, r["participant_id"], r["trial"], lambda k, t: "left" if k % 2 else "right")
    phases = [t["phase"] for t, _ in played]
    assert phases == ["practice"] * 3 + ["test"] * 10
    assert [t["number"] for t, _ in played] == [1, 2, 3, *range(1, 11)]
    assert all(a["correct"] is not None for t, a in played if t["phase"] == "practice")
    assert all(a["correct"] is None for t, a in played if t["phase"] == "test")
    con = sqlite3.connect(tmp_path / "study.sqlite")
    kinds = con.execute("SELECT phase, kind, model, COUNT(*) FROM trials GROUP BY phase, kind, model").fetchall()
    assert sorted(kinds) == [("practice", "model", "gray", 3), ("test", "model", "gray", 8),
                             ("test", "vigilance", "random", 2)]
    # the practice feedback and the end score agree with the server's record, computed independently
    fake = dict(con.execute("SELECT id, fake_side FROM trials"))
    for k, (t, a) in enumerate(played[:3]):
        assert a["correct"] == (("left" if k % 2 else "right") == fake[t["trial_id"]])
    expected = sum(("left" if k % 2 else "right") == fake[t["trial_id"]] for k, (t, _) in enumerate(played) if k >= 3)
    assert played[-1][1]["done"] and played[-1][1]["score"] == {"correct": expected, "total": 10}
    assert con.execute("SELECT ended_at IS NOT NULL FROM participants").fetchone()[0] == 1
    with pytest.raises(Refused):  # nothing left to answer
        svc.answer(r["participant_id"], played[-1][0]["trial_id"], "left")


def test_models_balanced_per_session_and_mixed_mode(built, tmp_path):
    svc = make_service(built, tmp_path)
    svc.config = StudyConfig(**{**SMALL, "models": ("gray", "gray2")})
    built.manifest["models"] = ["gray", "gray2"]  # a second "model" rendered like gray, to test assignment
    built.manifest["stimuli"] = {k: {**v, "gray2": v["gray"]} for k, v in built.manifest["stimuli"].items()}
    try:
        for i in range(6):
            svc.start(True, f"10.0.1.{i}", "ua")
        per_model = svc.store.participants_per_model(svc.study_id)
        assert per_model == {"gray": 3, "gray2": 3}
        con = sqlite3.connect(tmp_path / "study.sqlite")
        # one model per session: every model trial of a participant uses the participant's model
        bad = con.execute("SELECT COUNT(*) FROM trials t JOIN participants p ON p.id = t.participant_id "
                          "WHERE t.kind = 'model' AND t.model != p.model").fetchone()[0]
        assert bad == 0
        mixed = StudyService(StudyConfig(**{**SMALL, "models": ("gray", "gray2"), "mixed": True}),
                             Store(tmp_path / "mixed.sqlite"), built)
        mixed.start(True, "10.0.2.1", "ua")
        con = sqlite3.connect(tmp_path / "mixed.sqlite")
        assert con.execute("SELECT model FROM participants").fetchone()[0] == MIXED
        used = {m for (m,) in con.execute("SELECT model FROM trials WHERE kind = 'model'")}
        assert used == {"gray", "gray2"}
    finally:
        built.manifest["models"] = ["gray"]
        for v in built.manifest["stimuli"].values():
            v.pop("gray2")


# --------------------------------------------------------------------------- statistics


def synthetic(rates_by_participant, model="m", vigilance=None, n=40, fast=0):
    """A judgments DataFrame: participant i was fooled on ``round(rate * n)`` of ``n`` test pairs."""
    import pandas as pd

    rows = []
    for i, rate in enumerate(rates_by_participant):
        fooled = round(rate * n)
        for k in range(n):
            rows.append(dict(participant_id=f"{model}{i}", phase="test", kind="model", model=model,
                             image_id=f"img{k % 5}", correct=int(k >= fooled), flags="fast" if k < fast else ""))
        for k in range(4):
            ok = 1 if vigilance is None else int(k >= vigilance[i])
            rows.append(dict(participant_id=f"{model}{i}", phase="test", kind="vigilance", model="random",
                             image_id="v", correct=ok, flags=""))
        rows.append(dict(participant_id=f"{model}{i}", phase="practice", kind="model", model=model,
                         image_id="p", correct=0, flags=""))
    df = pd.DataFrame(rows)
    df["fooled"] = 1 - df["correct"]
    return df


def test_fooled_rate_and_bootstrap_se_match_hand_computation():
    per = [0.1, 0.2, 0.3, 0.4, 0.25, 0.35, 0.15, 0.45, 0.3, 0.2]
    df = synthetic(per)
    r = stats.fooled_rates(df, n_boot=4000, seed=1)["m"]
    assert r["n_participants"] == 10 and r["n_judgments"] == 400  # practice and vigilance not counted
    assert r["rate"] == pytest.approx(100 * np.mean(per))
    # equal n per participant: the bootstrap SE of the pooled rate ~ SD of per-participant rates / sqrt(P)
    analytic = 100 * np.std(per, ddof=0) / np.sqrt(len(per))
    assert r["se"] == pytest.approx(analytic, rel=0.1)


def test_vigilance_exclusion_and_fast_flags_leave_out_judgments():
    df = synthetic([0.5, 0.5, 0.0], vigilance=[0, 1, 4], fast=0)
    q = stats.participant_quality(df, 0.25)
    assert list(q.sort_values("participant_id")["excluded"]) == [False, False, True]
    r = stats.fooled_rates(df, 0.25, n_boot=200)["m"]
    assert r["n_participants"] == 2 and r["rate"] == pytest.approx(50.0)
    v = stats.vigilance_summary(df, 0.25)
    assert v["n_excluded"] == 1 and v["accuracy"] == pytest.approx(100 * (12 - 5) / 12, abs=1e-3)
    df2 = synthetic([0.5, 0.5], fast=10)  # the first 10 of each participant are fast and fooled
    r2 = stats.fooled_rates(df2, n_boot=200)["m"]
    assert r2["n_judgments"] == 60 and r2["rate"] == pytest.approx(100 * 10 / 30, abs=1e-3)


def test_bootstrap_test_between_models():
    import pandas as pd

    rng = np.random.default_rng(0)
    a = synthetic(list(np.clip(rng.normal(0.35, 0.05, 20), 0, 1)), model="a")
    b = synthetic(list(np.clip(rng.normal(0.15, 0.05, 20), 0, 1)), model="b")
    c = synthetic(list(np.clip(rng.normal(0.35, 0.05, 20), 0, 1)), model="c")
    df = pd.concat([a, b, c], ignore_index=True)
    ab = stats.compare_models(df, "a", "b", n_boot=2000)
    assert ab["diff"] == pytest.approx(stats.fooled_rates(df, n_boot=10)["a"]["rate"]
                                       - stats.fooled_rates(df, n_boot=10)["b"]["rate"], abs=1e-6)
    assert ab["p_value"] < 0.01 and ab["ci95"][0] > 0
    ac = stats.compare_models(df, "a", "c", n_boot=2000)
    assert ac["p_value"] > 0.05 and ac["ci95"][0] < 0 < ac["ci95"][1]


# --------------------------------------------------------------------------- end to end in process: CLI


def test_cli_build_and_stats(built, tmp_path, capsys):
    from colorbench.cli import main

    cfg = tmp_path / "study.toml"
    cfg.write_text('name = "cli"\nmodels = ["gray"]\nn_images = 3\nimage_size = 32\nn_practice = 2\nn_test = 10\n'
                   'vigilance_fraction = 0.2\nmin_response_ms = 0\nbootstrap_samples = 300\n'
                   'max_answers_per_minute = 0\n')
    data = tmp_path / "data"
    assert main(["study", "build", "--config", str(cfg), "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "3 images" in out and "gray" in out
    manifests = list((data / "study_stimuli").glob("*/manifest.json"))
    assert len(manifests) == 1
    b = load_built(manifests[0].parent)
    assert b.models == ["gray"] and b.vigilance_model == "random" and len(b.images) == 3
    # play 3 sessions through the service on that build, then the stats verb
    svc = StudyService(load_config(cfg), Store(data / "study.sqlite"), b)
    con = sqlite3.connect(data / "study.sqlite")

    def attentive(k, t):  # spots every vigilance fake (nobody is excluded), says "left" otherwise
        kind, fake = con.execute("SELECT kind, fake_side FROM trials WHERE id = ?", (t["trial_id"],)).fetchone()
        return fake if kind == "vigilance" else "left"

    for i in range(3):
        r = svc.start(True, f"10.0.3.{i}", "ua")
        play(svc, r["participant_id"], r["trial"], attentive)
    results = tmp_path / "results"
    fooled = results / "fooled.json"
    assert main(["study", "stats", "--config", str(cfg), "--data-dir", str(data), "--out", str(results),
                 "--fooled", str(fooled)]) == 0
    out = capsys.readouterr().out
    assert "gray" in out and "vigilance" in out
    got = json.loads(fooled.read_text())
    df = stats.judgments_frame(svc.store)
    keep = df[(df.phase == "test") & (df.kind == "model")]
    assert not stats.participant_quality(df, 0.25)["excluded"].any()
    assert set(got) == {"gray"} and set(got["gray"]) == {"rate", "se", "n_participants", "n_judgments"}
    assert got["gray"]["rate"] == pytest.approx(100 * (1 - keep.correct.mean()), abs=1e-3)
    assert got["gray"]["n_judgments"] == len(keep) == 3 * 8 and got["gray"]["n_participants"] == 3
    import pandas as pd

    csv = pd.read_csv(results / "judgments.csv")
    pq = pd.read_parquet(results / "judgments.parquet")
    assert len(csv) == len(pq) == 3 * 12
    assert sorted(pq["judgment_id"]) == sorted(df["judgment_id"])
    assert list(csv.sort_values("judgment_id")["choice"]) == list(df.sort_values("judgment_id")["choice"])
    assert "ip_hash" not in pq.columns and "user_agent" not in pq.columns


# --------------------------------------------------------------------------- hub sync


def test_sync_off_without_configuration_and_says_so(tmp_path, caplog, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with caplog.at_level(logging.INFO, logger="colorbench.study.sync"):
        s = JudgmentSync(tmp_path / "sync", None, None)
    assert not s.enabled and "off" in caplog.text
    s.append({"id": 1})
    assert not (tmp_path / "sync").exists()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.INFO, logger="colorbench.study.sync"):
        s = JudgmentSync(tmp_path / "sync", "user/repo", "token")
    assert not s.enabled and "HF_HUB_OFFLINE" in caplog.text


def test_sync_appends_jsonl_for_the_scheduler_and_survives_a_failing_hub(built, tmp_path, monkeypatch):
    import threading
    import time

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    made = {}

    class FakeScheduler:
        def __init__(self, **kw):
            made.update(kw)
            self.lock = threading.Lock()

    s = JudgmentSync(tmp_path / "sync", "user/repo", "token", study="unit", scheduler_factory=FakeScheduler)
    for _ in range(100):
        if s.active:
            break
        time.sleep(0.02)
    assert s.active and made["repo_id"] == "user/repo" and made["repo_type"] == "dataset"
    svc = make_service(built, tmp_path)
    svc.sync = s
    r = svc.start(True, "10.0.0.1", "ua")
    play(svc, r["participant_id"], r["trial"], lambda k, t: "right")
    lines = [json.loads(x) for x in s.file.read_text().splitlines()]
    assert len(lines) == 13 and all(x["choice"] == "right" for x in lines)
    assert {x["trial_id"] for x in lines} == {x["trial_id"] for x in svc.store.judgment_rows()}
    assert not {"ip_hash", "user_agent"} & set(lines[0])

    def broken(**kw):
        raise OSError("no network")

    s2 = JudgmentSync(tmp_path / "sync2", "user/repo", "token", scheduler_factory=broken)
    time.sleep(0.2)
    assert not s2.active
    s2.append({"id": 1})  # keeps the line locally, never raises


# --------------------------------------------------------------------------- the tab, built without launching


def _ctx(tmp_path, available):
    from space.context import AppContext

    class Catalog:
        def status(self, name):
            class S:
                pass

            s = S()
            s.available = name in available
            s.reason = "" if s.available else f"no weights for {name}"
            return s

    return AppContext(data_dir=tmp_path, catalog=Catalog())


def _blocks(ctx):
    import gradio as gr

    from space.tabs import turing

    with gr.Blocks() as demo:
        turing.build(ctx)
    return demo


def test_tab_exposes_named_endpoints_and_keeps_available_models(tmp_path, monkeypatch):
    import gradio as gr

    cfg = tmp_path / "s.json"
    cfg.write_text(json.dumps({"name": "tab", "models": ["gray", "nope"]}))
    monkeypatch.setenv("COLORBENCH_STUDY_CONFIG", str(cfg))
    from space.tabs import turing

    service, unavailable = turing.make_service(_ctx(tmp_path, {"gray", "random"}))
    assert service.config.models == ("gray",) and unavailable == {}
    assert service.store.path == tmp_path / "study.sqlite"
    demo = _blocks(_ctx(tmp_path, {"gray", "random"}))
    api = {d.api_name for d in demo.fns.values() if d.api_visibility == "public"}
    assert {"study_start", "study_answer"} <= api
    start = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "cb-turing-start")
    assert isinstance(start, gr.Button) and start.interactive is not False


def test_tab_says_when_no_model_of_the_study_can_run(tmp_path, monkeypatch):
    cfg = tmp_path / "s.json"
    cfg.write_text(json.dumps({"name": "tab", "models": ["m1", "m2"]}))
    monkeypatch.setenv("COLORBENCH_STUDY_CONFIG", str(cfg))
    demo = _blocks(_ctx(tmp_path, {"random"}))
    blocks = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert blocks["cb-turing-start"].interactive is False
    note = blocks["cb-turing-unavailable"].value
    assert "m1: no weights for m1" in note and "m2: no weights for m2" in note


def test_client_ip_from_a_trusted_proxy_only(monkeypatch):
    from types import SimpleNamespace

    from space.tabs.turing import _request_info

    req = SimpleNamespace(client=SimpleNamespace(host="10.9.9.9"),
                          headers={"x-forwarded-for": "1.1.1.1, 203.0.113.5", "user-agent": "UA"})
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("COLORBENCH_TRUST_PROXY", raising=False)
    assert _request_info(req) == ("10.9.9.9", "UA")  # a client cannot choose its IP by sending a header
    monkeypatch.setenv("COLORBENCH_TRUST_PROXY", "1")
    assert _request_info(req) == ("203.0.113.5", "UA")  # the entry the proxy appended, not the spoofable first
    assert _request_info(None) == (None, "")
