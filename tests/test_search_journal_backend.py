"""The journal backend behaves as Optuna expects of a journal backend: a storage built on it
pickles (Optuna's storage contract: process pools, ``pickle.dumps(storage)``)."""

from __future__ import annotations

import pickle

import optuna

from barenet.search.journal import JournalLock, SafeJournalBackend


def backend(tmp_path):
    path = tmp_path / "journal.log"
    return SafeJournalBackend(path, JournalLock(tmp_path / "journal.log.flock"))


def test_a_journal_storage_pickles_and_both_copies_append(tmp_path):
    storage = optuna.storages.JournalStorage(backend(tmp_path))
    study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], "s")
    storage.set_study_system_attr(study_id, "key", "pickle")

    copy = pickle.loads(pickle.dumps(storage))
    assert copy.get_study_system_attrs(study_id) == {"key": "pickle"}
    copy.set_study_user_attr(study_id, "from", "copy")
    storage.set_study_user_attr(study_id, "and", "original")
    fresh = optuna.storages.JournalStorage(backend(tmp_path))
    assert fresh.get_study_user_attrs(study_id) == {"from": "copy", "and": "original"}


def test_a_held_pickled_lock_arrives_free(tmp_path):
    lock = JournalLock(tmp_path / "l.flock")
    lock.acquire()
    try:
        copy = pickle.loads(pickle.dumps(lock))
        assert not copy._lock.is_locked
    finally:
        lock.release()
