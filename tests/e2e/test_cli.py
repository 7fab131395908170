"""The `segmentd` CLI as a user runs it: child processes against a server in a child process."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.e2e.harness import ROOT, CliRunner, ServerProcess, child_env, free_port, run_cli, start_process


def write_jsonl(path: Path, *lines: Any) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def counts(stdout: str) -> dict[str, int]:
    """The counts of a summary line like "accepted 3, duplicates 0, rejected 2"."""
    return {name: int(n) for name, n in re.findall(r"\b(accepted|duplicates|rejected|created|updated) (\d+)", stdout)}


def assert_clean_failure(result: subprocess.CompletedProcess[str], status: int, *needles: str) -> None:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


# --------------------------------------------------------------------------- ingest


def test_ingest_reports_counts_and_rejected_line_numbers(cli: CliRunner, tmp_path: Path) -> None:
    events = write_jsonl(
        tmp_path / "events.jsonl",
        {"eventTypeKey": "cliVisit", "eventId": "v-1", "params": {"email": "cli1@example.com"}},
        {"eventTypeKey": "cliVisit", "eventId": "v-2", "params": [{"name": "Email", "value": "cli2@example.com"}]},
        "{this is not json",
        "",
        {"eventTypeKey": "cliVisit", "eventId": "v-3", "timestamp": "not-a-time", "params": {"email": "cli3@example.com"}},
        {"eventTypeKey": "cliVisit", "eventId": "v-4", "keyValue": "cookie-1", "params": {"page": "/"}},
    )
    first = cli("ingest", str(events))
    assert first.returncode == 1, first.stderr
    assert counts(first.stdout) == {"accepted": 3, "duplicates": 0, "rejected": 2}
    assert re.search(r"^line 3: .*not valid JSON", first.stderr, re.MULTILINE)
    assert re.search(r"^line 5: timestamp", first.stderr, re.MULTILINE)
    assert "Traceback" not in first.stderr
    again = cli("ingest", str(events))
    assert counts(again.stdout) == {"accepted": 0, "duplicates": 3, "rejected": 2}


def test_ingest_of_a_clean_file_exits_zero_and_stays_quiet(cli: CliRunner, tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "ok.jsonl", *({"eventTypeKey": "cliOk", "params": {"email": f"ok{i}@example.com"}} for i in range(5)))
    result = cli("ingest", str(events))
    assert result.returncode == 0, result.stderr
    assert counts(result.stdout) == {"accepted": 5, "duplicates": 0, "rejected": 0}
    assert result.stderr == ""  # no progress line when stderr is not a terminal


def test_ingest_reads_stdin_and_splits_large_inputs_into_batches(cli: CliRunner) -> None:
    n = 25_000  # more than two batches of 10,000
    lines = "".join(json.dumps({"eventTypeKey": "cliBulk", "params": {"email": f"b{i % 500}@example.com", "i": i}}) + "\n" for i in range(n))
    result = cli("ingest", "-", input=lines)
    assert result.returncode == 0, result.stderr
    assert counts(result.stdout)["accepted"] == n
    types = json.loads(cli("event-types", "cliBulk", "--json").stdout)
    assert types[0]["count"] == n


def test_ingest_shows_progress_when_stderr_is_a_terminal(server_process: ServerProcess, tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "many.jsonl", *({"eventTypeKey": "cliTty", "params": {"email": f"t{i % 50}@example.com"}} for i in range(30_000)))
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "ingest", str(events), "--server", server_process.address],
            cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower,
        )  # fmt: skip
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closes when the child exits
                break
            if not chunk:
                break
            seen += chunk
        stdout, _ = process.communicate(timeout=120)
    finally:
        os.close(leader)
    assert process.returncode == 0
    assert b"lines read" in seen
    assert counts(stdout.decode())["accepted"] == 30_000


def test_ingest_caps_the_rejected_lines_it_prints(cli: CliRunner, tmp_path: Path) -> None:
    events = write_jsonl(tmp_path / "bad.jsonl", *(["[1]"] * 30))
    result = cli("ingest", str(events), "--max-errors", "5")
    assert result.returncode == 1
    assert len(re.findall(r"^line \d+:", result.stderr, re.MULTILINE)) == 5
    assert "25 more" in result.stderr
    assert counts(result.stdout)["rejected"] == 30


def test_ingest_of_a_missing_file_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    assert_clean_failure(cli("ingest", str(tmp_path / "nope.jsonl")), 2, "cannot read")


# --------------------------------------------------------------------------- contacts and contact


def test_contacts_import_then_contact_get(cli: CliRunner, tmp_path: Path) -> None:
    contacts = write_jsonl(
        tmp_path / "contacts.jsonl",
        {"externalId": "CLI-1", "email": "Imported@Example.com", "fields": {"firstName": "Ima", "city": "Oslo"}},
        "not json at all",
        {"externalId": "CLI-2", "phone": "+1 555 0100"},
    )
    result = cli("contacts", "import", str(contacts))
    assert result.returncode == 1
    assert counts(result.stdout) == {"created": 2, "updated": 0, "rejected": 1}
    assert re.search(r"^line 2: ", result.stderr, re.MULTILINE)
    events = write_jsonl(tmp_path / "e.jsonl", {"eventTypeKey": "cliLogin", "timestamp": 1_700_000_000_000, "params": {"externalCustomerId": "CLI-1", "osType": "iOS"}})
    assert cli("ingest", str(events)).returncode == 0
    shown = cli("contact", "get", "email:imported@example.com")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["externalId"] == "CLI-1" and doc["fields"]["city"] == "Oslo"
    assert isinstance(doc["contactId"], int)
    assert [e["eventTypeKey"] for e in doc["recentEvents"]] == ["cliLogin"]
    assert doc["recentEvents"][0]["time"] == "2023-11-14T22:13:20Z"
    by_id = json.loads(cli("contact", "get", str(doc["contactId"])).stdout)
    assert by_id["email"] == "imported@example.com"


def test_contact_get_failures_are_clean(cli: CliRunner) -> None:
    assert_clean_failure(cli("contact", "get", "email:nobody-here@example.com"), 1, "not found")
    assert_clean_failure(cli("contact", "get", "shoeSize:44"), 1, "invalid argument", "contact.ref")


# --------------------------------------------------------------------------- event-types


def test_event_types_table_and_one_type(cli: CliRunner, tmp_path: Path) -> None:
    events = write_jsonl(
        tmp_path / "typed.jsonl",
        {"eventTypeKey": "cliPurchase", "params": [{"name": "email", "value": "p@example.com"}, {"name": "totalPrice", "value": 99.5},
                                                   {"name": "items", "value": json.dumps([{"productId": "SKU-1", "quantity": 2}])}]},
    )  # fmt: skip
    assert cli("ingest", str(events)).returncode == 0
    listing = cli("event-types")
    assert listing.returncode == 0
    assert listing.stdout.splitlines()[0].split()[:3] == ["TYPE", "EVENTS", "PATHS"]
    assert re.search(r"^cliPurchase\s+1\s", listing.stdout, re.MULTILINE)
    one = cli("event-types", "cliPurchase")
    assert one.returncode == 0
    assert re.search(r"^totalPrice\s+number\s+1\s+99\.5", one.stdout, re.MULTILINE)
    assert re.search(r"^items\.productId\s+string\s+1\s+\"SKU-1\"", one.stdout, re.MULTILINE)
    machine = json.loads(cli("event-types", "cliPurchase", "--json").stdout)
    assert machine[0]["key"] == "cliPurchase" and machine[0]["count"] == 1
    assert {"path": "items.quantity", "kind": "number"}.items() <= next(p for p in machine[0]["paths"] if p["path"] == "items.quantity").items()
    assert_clean_failure(cli("event-types", "cliNever"), 1, "not found")


# --------------------------------------------------------------------------- connection and usage


def test_an_unreachable_server_is_a_clear_usage_error(tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"
    events = write_jsonl(tmp_path / "x.jsonl", {"eventTypeKey": "x", "params": {"email": "x@example.com"}})
    for args in (("event-types",), ("contact", "get", "1"), ("ingest", str(events)), ("contacts", "import", str(events))):
        result = run_cli(*args, "--server", closed, timeout=60)
        assert_clean_failure(result, 2, f"cannot reach segmentd at {closed}")


def test_usage_errors_exit_2() -> None:
    result = run_cli("contact", timeout=60)
    assert result.returncode == 2 and "usage:" in result.stderr


# --------------------------------------------------------------------------- serve


def test_serve_demo_starts_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    child = start_process(tmp_path, "--demo", "--data-dir", str(data_dir))
    try:
        # Health turns SERVING as the ready flag is set; the announcement follows a moment later.
        deadline = time.monotonic() + 10
        out = child.stdout.read_text()
        while "segmentd contact get" not in out and time.monotonic() < deadline:
            time.sleep(0.05)
            out = child.stdout.read_text()
        assert f"segmentd serving on {child.address}" in out
        assert "segmentd event-types" in out and f"--server {child.address}" in out
        assert data_dir.is_dir()
        listing = run_cli("event-types", "--json", server=child.address)
        types = {t["key"]: t for t in json.loads(listing.stdout)}
        assert {"pageViewed", "productViewed", "purchase", "WorkoutStarted", "emailOpened"} <= set(types)
        assert any(p["path"] == "product.price" and p["kind"] == "number" for p in types["productViewed"]["paths"])
        ref = re.search(r"segmentd contact get (\S+)", out).group(1)  # type: ignore[union-attr]
        contact = run_cli("contact", "get", ref, server=child.address)
        assert contact.returncode == 0 and json.loads(contact.stdout)["contactId"] >= 1
        listed = run_cli("segment", "list", server=child.address)
        assert listed.returncode == 0
        assert all(name in listed.stdout for name in re.search(r"demo segments: ([^)]*)", out).group(1).split(", "))  # type: ignore[union-attr]
        members = run_cli("segment", "members", "big-spenders-90d", server=child.address)
        assert members.returncode == 0 and members.stdout.split()
    finally:
        status = child.stop()
    assert status == 0


def test_serve_on_a_taken_port_fails_clearly(server_process: ServerProcess) -> None:
    result = run_cli("serve", "--listen", server_process.address)
    assert_clean_failure(result, 2, "cannot listen on")


def test_the_cli_runs_as_python_m_server() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "--help"], cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0 and "event-types" in result.stdout
