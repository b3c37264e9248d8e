"""The protocol of one participant's session, validated entirely on the server.

A session: intro and consent; ``n_practice`` pairs with right/wrong feedback (not
counted); ``n_test`` pairs without feedback, about ``vigilance_fraction`` of them
real-versus-``random`` vigilance pairs; an end screen with the score. Each pair is
served under a random trial id with two ``data:`` URLs, left and right; which side
is fake, the model and the image name stay in the database. The participant's
random id is the session token: every answer names it and a trial id, and the
store accepts it only for that participant's current, served, unanswered trial,
within the rate limits. Response time is measured on the server, from the moment
the trial was first served to the moment the answer arrives.
"""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .config import StudyConfig
from .stimuli import REAL, BuiltStudy, StimuliCache
from .store import Refused, Store, TrialRow
from .sync import JudgmentSync

__all__ = ["StudyService", "Refused", "MIXED"]

log = logging.getLogger(__name__)

MIXED = "mixed"
MAX_USER_AGENT = 300


def _is_token(value: Any, n: int = 64) -> bool:
    return isinstance(value, str) and 8 <= len(value) <= n and all(c.isalnum() or c in "-_" for c in value)


class StudyService:
    """Starts sessions, serves trials and records answers for one study.

    Args:
        config: the study definition.
        store: the database.
        stimuli: the built stimuli, or a :class:`StimuliCache` building them on first use.
        clock: seconds since the epoch (injectable for tests).
        sync: an optional :class:`~colorbench.study.sync.JudgmentSync` copying judgments to the hub.
    """

    def __init__(self, config: StudyConfig, store: Store, stimuli: "StimuliCache | BuiltStudy",
                 clock: Callable[[], float] = time.time, sync: Optional[JudgmentSync] = None) -> None:
        self.config = config
        self.store = store
        self._stimuli = stimuli
        self.clock = clock
        self.sync = sync
        self._registered = False

    @classmethod
    def from_paths(cls, config: StudyConfig, stimuli_root: Path, db_path: Path,
                   sync: Optional[JudgmentSync] = None) -> "StudyService":
        return cls(config, Store(db_path), StimuliCache(config, stimuli_root), sync=sync)

    @property
    def study_id(self) -> str:
        return f"{self.config.name}-{self.config.stimulus_key()}"

    @property
    def built(self) -> BuiltStudy:
        built = self._stimuli.get() if isinstance(self._stimuli, StimuliCache) else self._stimuli
        if not self._registered:
            self.store.ensure_study(self.study_id, self.config.name, self.config.stimulus_key(),
                                    {**self.config.to_dict(), "built_models": built.models,
                                     "skipped": built.manifest.get("skipped", {})})
            self._registered = True
        return built

    # -- what the intro screen says -------------------------------------------
    def intro(self) -> Dict[str, Any]:
        c = self.config
        return {"consent_text": c.consent_text, "n_practice": c.n_practice, "n_test": c.n_test,
                "exposure_ms": c.exposure_ms, "image_size": c.image_size}

    # -- session plan ----------------------------------------------------------
    def _assign_model(self, built: BuiltStudy) -> str:
        if self.config.mixed or len(built.models) == 1:
            return MIXED if self.config.mixed else built.models[0]
        counts = self.store.participants_per_model(self.study_id)
        least = min(counts.get(m, 0) for m in built.models)
        return secrets.choice([m for m in built.models if counts.get(m, 0) == least])

    def _plan(self, pid: str, session_model: str, built: BuiltStudy) -> List[Dict[str, Any]]:
        rng = secrets.SystemRandom()
        c = self.config
        images = built.images
        order: List[str] = []
        while len(order) < c.n_pairs:
            batch = images[:]
            rng.shuffle(batch)
            order.extend(batch)
        models = built.models
        vigilance_at = set(rng.sample(range(c.n_test), c.n_vigilance)) if built.vigilance_model else set()
        rows: List[Dict[str, Any]] = []
        for idx in range(c.n_pairs):
            phase = "practice" if idx < c.n_practice else "test"
            k = idx - c.n_practice
            if phase == "test" and k in vigilance_at:
                kind, model = "vigilance", built.vigilance_model
            else:
                kind = "model"
                model = models[idx % len(models)] if session_model == MIXED else session_model
            image = order[idx]
            rows.append({"id": secrets.token_urlsafe(16), "participant_id": pid, "idx": idx, "phase": phase,
                         "kind": kind, "model": model, "image_id": image,
                         "real_stim": built.stimulus(image, REAL), "fake_stim": built.stimulus(image, model),
                         "fake_side": rng.choice(("left", "right"))})
        return rows

    def _payload(self, trial: TrialRow, built: BuiltStudy) -> Dict[str, Any]:
        """What the client sees of a trial: a random id, its position, and two image data URLs."""
        left, right = ((trial.fake_stim, trial.real_stim) if trial.fake_side == "left"
                       else (trial.real_stim, trial.fake_stim))
        c = self.config
        practice = trial.phase == "practice"
        return {"trial_id": trial.id, "phase": trial.phase,
                "number": trial.idx + 1 if practice else trial.idx - c.n_practice + 1,
                "of": c.n_practice if practice else c.n_test, "exposure_ms": c.exposure_ms,
                "left": built.data_url(left), "right": built.data_url(right)}

    # -- the calls a client can make ---------------------------------------------
    def start(self, consent: Any, ip: Optional[str], user_agent: Any = "") -> Dict[str, Any]:
        """Open a session (consent must be exactly ``True``) and serve its first pair.

        Returns ``{"participant_id", "n_practice", "n_test", "trial"}``.
        """
        if consent is not True:
            raise Refused("no_consent", "Please read the consent note and tick the box to take part.")
        built = self.built
        now = self.clock()
        pid = secrets.token_urlsafe(16)
        model = self._assign_model(built)
        ua = user_agent if isinstance(user_agent, str) else ""
        participant = {"id": pid, "study_id": self.study_id, "ip_hash": self.store.ip_hash(ip),
                       "user_agent": ua[:MAX_USER_AGENT], "model": model, "started_at": now}
        self.store.create_participant(participant, self._plan(pid, model, built),
                                      max_sessions_per_ip=self.config.max_sessions_per_ip_per_hour or None)
        trial = self.store.serve_next(pid, self.clock())
        assert trial is not None  # a session has at least one pair (config validation)
        log.info("study %s: session started (%s)", self.study_id, model)
        return {"participant_id": pid, "n_practice": self.config.n_practice, "n_test": self.config.n_test,
                "trial": self._payload(trial, built)}

    def answer(self, participant_id: Any, trial_id: Any, choice: Any) -> Dict[str, Any]:
        """Record "``choice`` is the fake" for the current pair and serve the next one.

        Returns ``{"accepted": True, "phase", "correct" (practice only, else None),
        "next" (payload or None), "done", "score" ({"correct", "total"} when done)}``.

        Raises:
            Refused: for anything but a valid answer to the participant's current pair.
        """
        if not _is_token(participant_id):
            raise Refused("unknown_participant", "Unknown session; please start again.")
        if not _is_token(trial_id):
            raise Refused("unknown_trial", "This pair does not belong to your session.")
        if not isinstance(choice, str):
            raise Refused("bad_choice", "The answer must be 'left' or 'right'.")
        c = self.config
        built = self.built
        row = self.store.answer(participant_id, trial_id, choice.strip().lower(), self.clock(),
                                min_response_ms=c.min_response_ms,
                                max_per_minute=c.max_answers_per_minute or None,
                                max_per_ip_minute=c.max_answers_per_ip_per_minute or None)
        if self.sync is not None:
            self.sync.append(row)
        nxt = self.store.serve_next(participant_id, self.clock())
        out: Dict[str, Any] = {"accepted": True, "phase": row["phase"],
                               "correct": bool(row["correct"]) if row["phase"] == "practice" else None,
                               "next": self._payload(nxt, built) if nxt else None, "done": nxt is None,
                               "score": None}
        if nxt is None:
            self.store.finish(participant_id, self.clock())
            right, total = self.store.score(participant_id)
            out["score"] = {"correct": right, "total": total}
        return out
