"""Result files: round trips, atomic writes, validation errors naming file and line, submission zips."""

from __future__ import annotations

import argparse
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1track import atomic, pack, results
from r1track.datasets.base import Sequence
from r1track.errors import DataError, R1TrackError

rng = np.random.default_rng(0)


def boxes(n):
    return np.round(rng.uniform(0, 100, (n, 4)), 3)


def seq(name, n):
    return Sequence(name, [f"{i}.jpg" for i in range(n)], np.zeros((n, 4)))


def no_temp_files(folder):
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- atomic writes


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic.atomic_write_text(target, "one")
    atomic.atomic_write_text(target, "two")
    assert target.read_text() == "two" and no_temp_files(tmp_path)
    atomic.atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


def test_failed_write_keeps_the_existing_file(tmp_path):
    target = tmp_path / "a.txt"
    atomic.atomic_write_text(target, "good")
    with pytest.raises(TypeError):
        atomic.atomic_write_bytes(target, "not bytes")  # fails inside the write
    assert target.read_text() == "good" and no_temp_files(tmp_path)


def test_a_staged_folder_replaces_its_target_whole_or_leaves_it_as_it_was(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_dir(out) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("stopped while writing")
    assert [f.name for f in tmp_path.iterdir()] == ["model"] and (out / "old.txt").read_text() == "old"
    with atomic.atomic_dir(out) as staging:
        (staging / "new.txt").write_text("new")
    assert [f.name for f in out.iterdir()] == ["new.txt"] and [f.name for f in tmp_path.iterdir()] == ["model"]


# ---------------------------------------------------------------- GOT-10k layout


def test_got10k_round_trip_and_layout(tmp_path):
    runs = [boxes(7) for _ in range(3)]
    times = [rng.uniform(0, 1, 7) for _ in range(3)]
    results.write_got10k(tmp_path, "GOT-10k_Val_000001", runs, times)
    folder = tmp_path / "GOT-10k_Val_000001"
    assert sorted(p.name for p in folder.iterdir()) == [
        "GOT-10k_Val_000001_001.txt", "GOT-10k_Val_000001_002.txt", "GOT-10k_Val_000001_003.txt",
        "GOT-10k_Val_000001_time.txt"]
    first = (folder / "GOT-10k_Val_000001_001.txt").read_text().splitlines()[0]
    assert first == ",".join(f"{v:.3f}" for v in runs[0][0])
    got_runs, got_times = results.read_got10k(tmp_path, "GOT-10k_Val_000001", 7)
    for a, b in zip(got_runs, runs):
        np.testing.assert_allclose(a, b, atol=5e-4)
    assert got_times.shape == (7, 3)
    np.testing.assert_allclose(got_times, np.stack(times, 1), atol=1e-8)
    assert results.is_complete_got10k(tmp_path, "GOT-10k_Val_000001", 7, 3)
    assert not results.is_complete_got10k(tmp_path, "GOT-10k_Val_000001", 8, 3)
    assert not results.is_complete_got10k(tmp_path, "GOT-10k_Val_000001", 7, 1)  # 3 time columns


def test_got10k_incomplete_without_time_file_and_rewrite_drops_stale_runs(tmp_path):
    results.write_got10k(tmp_path, "s", [boxes(4)] * 3, [np.ones(4)] * 3)
    (tmp_path / "s" / "s_time.txt").unlink()
    assert not results.is_complete_got10k(tmp_path, "s", 4, 3)
    results.write_got10k(tmp_path, "s", [boxes(4)], [np.ones(4)])
    assert [p.name for p in results.got10k_run_files(tmp_path, "s")] == ["s_001.txt"]
    assert results.is_complete_got10k(tmp_path, "s", 4, 1)


def test_write_refuses_nan_and_mismatched_lengths(tmp_path):
    bad = boxes(3)
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="frame 1 is not finite"):
        results.write_got10k(tmp_path, "s", [bad], [np.ones(3)])
    with pytest.raises(ValueError, match="3 rows"):
        results.write_got10k(tmp_path, "s", [boxes(3)], [np.ones(2)])
    with pytest.raises(ValueError, match="not finite"):
        results.write_ope(tmp_path, "s", bad)
    assert not (tmp_path / "s").exists() and not (tmp_path / "s.txt").exists()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "-", "+"]), st.integers(0, 10**9), st.integers(0, 6),
                          st.sampled_from([",", "\t", " "])), min_size=1, max_size=40))
def test_reader_is_bit_identical_to_float(tokens):
    texts = [f"{sgn}{str(m)[:-k] or '0'}.{str(m)[-k:].zfill(k)}" if k else f"{sgn}{m}"
             for sgn, m, k, _ in tokens]
    rows = [texts[i:i + 2] for i in range(0, len(texts) - 1, 2)] or [texts[:1] * 2]
    seps = [t[3] for t in tokens]
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a.txt", Path(tmp) / "b.txt"
        a.write_text("\n".join(seps[i % len(seps)].join(r) for i, r in enumerate(rows)))
        b.write_text("1.5,2\n")
        table = results.read_tables([(a, len(rows), 2, False, False), (b, 1, 2, False, False)])
    expected = np.array([[float(v) for v in r] for r in rows])
    assert table[0].tobytes() == expected.tobytes()  # bit-identical, -0.0 too
    assert table[1].tolist() == [[1.5, 2.0]]


def test_readers_accept_comma_tab_and_space(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "a_001.txt").write_text("1,2,3,4\n5\t6\t7\t8\r\n9 10 11 12\n\n")
    runs, times = results.read_got10k(tmp_path, "a", 3)
    assert runs[0].tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]] and times is None


@pytest.mark.parametrize("text, line, message", [
    ("1,2,3,4\nnan,2,3,4\n1,2,3,4\n", 2, "not finite"),
    ("1,2,3,4\n1,2,3,inf\n1,2,3,4\n", 2, "not finite"),
    ("1,2,3,4\n1,2,3,4\n", 3, "has 2 rows, expected 3"),
    ("1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,4\n", 4, "has 4 rows, expected 3"),
    ("1,2,3,4\n1,2,3\n1,2,3,4\n", 2, "expected 4 values, found 3"),
    ("1,2,3,4\n1,2,3,4\nhello,world,3,4\n", 3, "not a number"),
])
def test_got10k_validation_names_file_and_line(tmp_path, text, line, message):
    (tmp_path / "s").mkdir()
    path = tmp_path / "s" / "s_001.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        results.read_got10k(tmp_path, "s", 3)
    assert err.value.path == path and err.value.line == line
    assert f"s_001.txt:{line}:" in str(err.value)


def test_got10k_missing_results_and_bad_time_file(tmp_path):
    with pytest.raises(DataError, match="s_001.txt: result file is missing"):
        results.read_got10k(tmp_path, "s", 3)
    results.write_got10k(tmp_path, "s", [boxes(3)] * 2, [np.ones(3)] * 2)
    (tmp_path / "s" / "s_time.txt").write_text("0.1\n0.1\n0.1\n")  # one column for two runs
    with pytest.raises(DataError, match="expected 2 values, found 1") as err:
        results.read_got10k(tmp_path, "s", 3)
    assert err.value.line == 1
    (tmp_path / "s" / "s_time.txt").write_bytes(b"\xff\n\xfe\n\x00\n")
    with pytest.raises(DataError, match="not a text file"):
        results.read_got10k(tmp_path, "s", 3)


# ---------------------------------------------------------------- one-pass layout


def test_ope_round_trip_nan_tolerance_and_truncation(tmp_path):
    b, t = boxes(5), rng.uniform(0, 1, 5)
    results.write_ope(tmp_path, "Couple", b, t)
    assert (tmp_path / "Couple.txt").is_file() and (tmp_path / "times" / "Couple_time.txt").is_file()
    got_b, got_t = results.read_ope(tmp_path, "Couple", 5)
    np.testing.assert_allclose(got_b, b, atol=5e-4)
    np.testing.assert_allclose(got_t, t, atol=1e-8)
    assert results.is_complete_ope(tmp_path, "Couple", 5)
    assert not results.is_complete_ope(tmp_path, "Couple", 4)
    got_b, got_t = results.read_ope(tmp_path, "Couple", 4, truncate=True)
    assert got_b.shape == (4, 4) and got_t.shape == (4,)
    with pytest.raises(DataError, match="has 5 rows, expected 6"):
        results.read_ope(tmp_path, "Couple", 6, truncate=True)
    # other toolkits write NaN for lost targets: accepted, the one-pass rules replace them
    (tmp_path / "uav.txt").write_text("1,2,3,4\nNaN,NaN,NaN,NaN\n")
    got_b, got_t = results.read_ope(tmp_path, "uav", 2)
    assert np.isnan(got_b[1]).all() and got_t is None
    results.write_ope(tmp_path, "Couple", b)  # rewritten without times: stale times go
    assert not (tmp_path / "times" / "Couple_time.txt").exists()


# ---------------------------------------------------------------- submission zips


def test_pack_got10k_test(tmp_path):
    res = tmp_path / "res"
    seqs = [seq("GOT-10k_Test_000001", 4), seq("GOT-10k_Test_000002", 6)]
    for s in seqs:
        results.write_got10k(res, s.name, [boxes(len(s))] * 3, [np.ones(len(s))] * 3)
    (res / "stray.txt").write_text("not part of the submission")
    out = pack.pack_got10k_test(res, seqs, tmp_path / "sub.zip")
    with zipfile.ZipFile(out) as zf:
        names = sorted(zf.namelist())
        assert zf.read("GOT-10k_Test_000001/GOT-10k_Test_000001_002.txt") == \
            (res / "GOT-10k_Test_000001" / "GOT-10k_Test_000001_002.txt").read_bytes()
    assert names == sorted(f"{s.name}/{s.name}_{k}.txt" for s in seqs for k in ("001", "002", "003", "time"))
    with pytest.raises(R1TrackError, match="already exists"):
        pack.pack_got10k_test(res, seqs, out)
    pack.pack_got10k_test(res, seqs[:1], out, overwrite=True)
    with zipfile.ZipFile(out) as zf:
        assert len(zf.namelist()) == 4
    assert no_temp_files(tmp_path)


def test_pack_got10k_refuses_incomplete_results(tmp_path):
    res = tmp_path / "res"
    seqs = [seq("a", 4), seq("b", 4), seq("c", 4)]
    results.write_got10k(res, "a", [boxes(4)], [np.ones(4)])
    results.write_got10k(res, "b", [boxes(3)], [np.ones(3)])  # wrong length
    with pytest.raises(R1TrackError, match="2 of 3 sequences") as err:
        pack.pack_got10k_test(res, seqs, tmp_path / "sub.zip")
    assert "b_001.txt" in str(err.value) and "c_001.txt" in str(err.value)
    (res / "b" / "b_time.txt").unlink()
    results.write_got10k(res, "c", [boxes(4)], [np.ones(4)])
    (res / "c" / "c_time.txt").unlink()
    with pytest.raises(R1TrackError, match="time file is missing"):
        pack.pack_got10k_test(res, seqs[::2], tmp_path / "sub.zip")
    assert not (tmp_path / "sub.zip").exists() and no_temp_files(tmp_path)


def test_pack_trackingnet(tmp_path):
    res = tmp_path / "res"
    seqs = [seq("0__abc", 3), seq("1__def", 2)]
    for s in seqs:
        results.write_ope(res, s.name, boxes(len(s)))
    out = pack.pack_trackingnet(res, seqs, tmp_path / "tn.zip")
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["0__abc.txt", "1__def.txt"]
    (res / "1__def.txt").write_text("1,2,3,4\nnan,1,1,1\n")
    with pytest.raises(R1TrackError, match=r"1__def.txt:2: value is not finite"):
        pack.pack_trackingnet(res, seqs, tmp_path / "tn2.zip")
    assert not (tmp_path / "tn2.zip").exists()


def test_pack_command_arguments():
    parser = argparse.ArgumentParser()
    pack.add_arguments(parser)
    args = parser.parse_args(["--format", "got10k", "--dataset", "got10k", "--root", "r", "--results", "d",
                              "--tracker", "t", "--out", "x.zip"])
    assert args.split == "test" and args.overwrite is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--format", "zip", "--dataset", "x", "--root", "r", "--results", "d",
                           "--tracker", "t", "--out", "x.zip"])


def test_pack_command_end_to_end(tmp_path, capsys):
    """`r1track pack` over a GOT-10k test split read by r1track's own dataset reader."""
    cv2 = pytest.importorskip("cv2")
    from r1track import cli

    split = tmp_path / "got10k" / "test"
    names = ["GOT-10k_Test_000001", "GOT-10k_Test_000002"]
    split.mkdir(parents=True)
    (split / "list.txt").write_text("\n".join(names) + "\n")
    ok, jpg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    for name in names:
        (split / name).mkdir()
        (split / name / "groundtruth.txt").write_text("1,1,4,4\n")
        for i in range(3):
            (split / name / f"{i + 1:08d}.jpg").write_bytes(jpg.tobytes())
    res = tmp_path / "results"
    results.write_got10k(res / "trk", names[0], [boxes(3)] * 3, [np.ones(3)] * 3)
    argv = ["pack", "--format", "got10k", "--dataset", "got10k", "--root", str(tmp_path / "got10k"),
            "--results", str(res), "--tracker", "trk", "--out", str(tmp_path / "sub.zip")]
    assert cli.main(argv) == 2  # second sequence missing: one-line error, nothing written
    assert "1 of 2 sequences" in capsys.readouterr().err and not (tmp_path / "sub.zip").exists()
    results.write_got10k(res / "trk", names[1], [boxes(3)] * 3, [np.ones(3)] * 3)
    assert cli.main(argv) == 0
    with zipfile.ZipFile(tmp_path / "sub.zip") as zf:
        assert len(zf.namelist()) == 8
    assert cli.main(argv) == 2 and "already exists" in capsys.readouterr().err


def test_times_may_be_nan_but_not_inf(tmp_path):
    t = np.array([0.0, np.nan, 0.1])
    results.write_got10k(tmp_path, "s", [boxes(3)], [t])
    _, got = results.read_got10k(tmp_path, "s", 3)
    assert got[0, 0] == 0 and np.isnan(got[1, 0]) and got[2, 0] == 0.1
    with pytest.raises(ValueError, match="infinite"):
        results.write_ope(tmp_path, "o", boxes(3), times=[0, np.inf, 1])


def test_general_syntax_falls_back_to_the_full_parser(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "s_001.txt").write_text("1e1,2.5E-1,-3,4\n1,2,3,4\n")
    (tmp_path / "s" / "s_time.txt").write_text("nan\n0.5\n")
    runs, times = results.read_got10k(tmp_path, "s", 2)
    assert runs[0].tolist() == [[10, 0.25, -3, 4], [1, 2, 3, 4]]
    assert np.isnan(times[0, 0]) and times[1, 0] == 0.5

