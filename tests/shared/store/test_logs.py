"""Reading a job's log: from an offset, whole lines while it is written, everything once the job has ended."""

from __future__ import annotations

from shared.store.logs import follow_log, job_dir, read_log


def write(job_id: int, data: bytes, mode: str = "ab") -> None:
    job_dir(job_id).mkdir(parents=True, exist_ok=True)
    with open(job_dir(job_id) / "log.txt", mode) as f:
        f.write(data)


def test_no_log_yet_reads_empty():
    chunk = read_log(41)
    assert (chunk.text, chunk.start, chunk.end) == ("", 0, 0)


def test_read_from_an_offset_and_hold_back_a_line_being_written():
    write(42, "loading\nepoch 1/2 é\nepoch 2".encode())
    whole = read_log(42)
    assert whole.text == "loading\nepoch 1/2 é\nepoch 2" and whole.end == len("loading\nepoch 1/2 é\nepoch 2".encode())
    lines = read_log(42, whole_lines=True)
    assert lines.text == "loading\nepoch 1/2 é\n"
    assert read_log(42, lines.end).text == "epoch 2"
    assert read_log(42, 8).text.startswith("epoch 1/2")


def test_a_character_cut_by_the_writer_waits_for_its_other_half():
    write(43, b"a\nb " + "é".encode()[:1])
    assert read_log(43, whole_lines=True).text == "a\n"


def test_follow_yields_whole_lines_then_the_rest_once_finished():
    write(44, b"one\ntw")
    ended = iter([False, False, True, True])
    seen = []
    for chunk in follow_log(44, lambda: next(ended), poll=0):
        seen.append(chunk.text)
        if chunk.text == "one\n":
            write(44, b"o\nthree")  # the job writes on while it is followed
    assert seen == ["one\n", "two\n", "three"]  # "tw" waited for its newline; "three" came once the job ended
