"""The journal backend behaves as Optuna expects of a journal backend: a storage built on it
pickles (Optuna's storage contract: process pools, ``pickle.dumps(storage)``), and its lock
excludes threads sharing it as well as processes."""

from __future__ import annotations

import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

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


def test_the_lock_excludes_a_second_thread_until_released(tmp_path):
    lock = JournalLock(tmp_path / "l.flock")
    lock.acquire()
    got = threading.Event()

    def other() -> None:
        lock.acquire()
        got.set()
        lock.release()

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert not got.wait(0.5), "a second thread acquired the held lock"
    finally:
        lock.release()
        thread.join(10)
    assert got.is_set()


def test_a_held_pickled_lock_arrives_free(tmp_path):
    lock = JournalLock(tmp_path / "l.flock")
    lock.acquire()
    try:
        copy = pickle.loads(pickle.dumps(lock))
        assert not copy._lock.is_locked
    finally:
        lock.release()


def test_threads_appending_through_one_backend_lose_nothing(tmp_path):
    b = backend(tmp_path)
    records = [{"op_code": 0, "n": i} for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda r: b.append_logs([r]), records))
    got = list(b.read_logs(0))
    assert sorted(r["n"] for r in got) == list(range(200))
