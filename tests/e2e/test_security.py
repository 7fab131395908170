"""TLS, mutual TLS and bearer tokens on real servers, the CLI with the same credentials, and
privacy: erasure reaches memory, snapshots and the compacted log, leaves an audit line, and
identifiers stay out of the logs.

Certificates are made for each run with the `openssl` command into a temporary directory;
no key is ever committed.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from core.engine import Engine
from server import logs
from server.app import build_server
from server.auth import load_tokens
from server.observe import ServerMetrics
from server.pb import segmentd_pb2 as pb
from server.pb import segmentd_pb2_grpc as pb_grpc
from server.pipeline import Protection
from server.tls import ClientTls, ServerTls, client_channel
from snapshots.durable import open_durable
from tests.e2e.harness import CLI_TIMEOUT_S, NOW_MS, ROOT, START_TIMEOUT_S, child_env, free_port

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command to make test certificates")

READER = "reader-token-0123456789abcdef"
WRITER = "writer-token-0123456789abcdef"
TOKENS = f"{READER} read-only dashboards\n{WRITER} read-write ingest\n"
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path
    rogue_cert: Path
    rogue_key: Path


def openssl(workdir: Path, *args: str) -> None:
    subprocess.run([OPENSSL or "openssl", *args], cwd=workdir, check=True, capture_output=True, timeout=60)


def make_ca(workdir: Path, name: str) -> tuple[Path, Path]:
    openssl(workdir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}")
    return workdir / f"{name}.pem", workdir / f"{name}.key"


def make_leaf(workdir: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    openssl(workdir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    (workdir / f"{name}.ext").write_text(extensions)
    openssl(workdir, "x509", "-req", "-in", f"{name}.csr", "-CA", str(ca[0]), "-CAkey", str(ca[1]),
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return workdir / f"{name}.pem", workdir / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    workdir = tmp_path_factory.mktemp("pki")
    ca = make_ca(workdir, "test-ca")
    rogue = make_ca(workdir, "rogue-ca")
    server = make_leaf(workdir, "localhost", ca, "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                                  "extendedKeyUsage=serverAuth\n")
    client = make_leaf(workdir, "client-1", ca, "extendedKeyUsage=clientAuth\n")
    stranger = make_leaf(workdir, "stranger", rogue, "extendedKeyUsage=clientAuth\n")
    return Pki(ca[0], server[0], server[1], client[0], client[1], rogue[0], stranger[0], stranger[1])


# --------------------------------------------------------------------------- servers


@dataclass
class Served:
    engine: Engine
    port: int
    metrics: ServerMetrics

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stub(self, *, tls: ClientTls | None = None, token: str = "") -> pb_grpc.SegmentdStub:
        return pb_grpc.SegmentdStub(client_channel(self.target, tls=tls, token=token))


@contextmanager
def serving(protection: Protection) -> Iterator[Served]:
    engine = Engine(clock=lambda: NOW_MS)
    engine.ready = True
    metrics = protection.metrics or ServerMetrics()
    server, port = build_server(engine, "127.0.0.1:0", max_workers=4,
                                protection=dataclasses.replace(protection, metrics=metrics))
    server.start()
    try:
        yield Served(engine, port, metrics)
    finally:
        server.stop(None).wait(10)


def code_of(call: Callable[..., Any], *args: Any, **kwargs: Any) -> grpc.StatusCode:
    """OK, or the status code the call failed with."""
    try:
        result = call(*args, timeout=10, **kwargs)
        if hasattr(result, "__next__"):
            list(result)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def read(stub: pb_grpc.SegmentdStub) -> grpc.StatusCode:
    return code_of(stub.ListEventTypes, pb.ListEventTypesRequest())


def write(stub: pb_grpc.SegmentdStub, email: str = "w@example.com") -> grpc.StatusCode:
    line = json.dumps({"eventTypeKey": "login", "params": {"email": email}}).encode()
    return code_of(stub.IngestEvents, pb.IngestEventsRequest(jsonl=line))


def tokens() -> Any:
    return load_tokens(None, TOKENS.replace("\n", ","))


# --------------------------------------------------------------------------- TLS


def test_tls_serves_clients_that_trust_its_ca(pki: Pki) -> None:
    with serving(Protection(tls=ServerTls(pki.server_cert, pki.server_key))) as served:
        assert read(served.stub(tls=ClientTls(ca=pki.ca))) == grpc.StatusCode.OK
        assert write(served.stub(tls=ClientTls(ca=pki.ca))) == grpc.StatusCode.OK
        renamed = ClientTls(ca=pki.ca, server_name="localhost")
        assert read(served.stub(tls=renamed)) == grpc.StatusCode.OK


def test_tls_refuses_plaintext_and_clients_that_do_not_trust_it(pki: Pki) -> None:
    with serving(Protection(tls=ServerTls(pki.server_cert, pki.server_key))) as served:
        assert read(served.stub()) == grpc.StatusCode.UNAVAILABLE
        assert read(served.stub(tls=ClientTls(ca=pki.rogue_ca))) == grpc.StatusCode.UNAVAILABLE
        wrong_name = ClientTls(ca=pki.ca, server_name="elsewhere.example")
        assert read(served.stub(tls=wrong_name)) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_needs_a_client_certificate_from_its_ca(pki: Pki) -> None:
    with serving(Protection(tls=ServerTls(pki.server_cert, pki.server_key, pki.ca))) as served:
        assert read(served.stub(tls=ClientTls(ca=pki.ca))) == grpc.StatusCode.UNAVAILABLE
        stranger = ClientTls(ca=pki.ca, cert=pki.rogue_cert, key=pki.rogue_key)
        assert read(served.stub(tls=stranger)) == grpc.StatusCode.UNAVAILABLE
        member = ClientTls(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
        assert read(served.stub(tls=member)) == grpc.StatusCode.OK
        assert write(served.stub(tls=member)) == grpc.StatusCode.OK


def test_mutual_tls_and_tokens_combine(pki: Pki) -> None:
    member = ClientTls(ca=pki.ca, cert=pki.client_cert, key=pki.client_key)
    with serving(Protection(tls=ServerTls(pki.server_cert, pki.server_key, pki.ca), tokens=tokens())) as served:
        assert read(served.stub(tls=member)) == UNAUTHENTICATED
        assert write(served.stub(tls=member, token=READER)) == DENIED
        assert write(served.stub(tls=member, token=WRITER)) == grpc.StatusCode.OK
        assert read(served.stub(tls=ClientTls(ca=pki.ca), token=WRITER)) == grpc.StatusCode.UNAVAILABLE


# --------------------------------------------------------------------------- tokens


WRITES: list[tuple[str, Any]] = [
    ("IngestEvents", pb.IngestEventsRequest(jsonl=b'{"eventTypeKey":"login","params":{"email":"x@example.com"}}')),
    ("UpsertContacts", pb.UpsertContactsRequest(jsonl=b'{"email":"y@example.com"}')),
    ("PutSegment", pb.PutSegmentRequest(segment=pb.Segment(name="s", condition=pb.Condition(
        event=pb.EventCondition(type="login"))))),
    ("EraseContact", pb.EraseContactRequest(contact=pb.ContactRef(contact_id=1))),
    ("SetEventTypeConfig", pb.SetEventTypeConfigRequest(event_type_key="login")),
]


def test_tokens_missing_wrong_and_of_the_wrong_scope() -> None:
    with serving(Protection(tokens=tokens())) as served:
        assert read(served.stub()) == UNAUTHENTICATED
        assert write(served.stub()) == UNAUTHENTICATED
        assert read(served.stub(token="not-a-token-of-this-server")) == UNAUTHENTICATED
        assert read(served.stub(token=READER)) == grpc.StatusCode.OK
        for method, request in WRITES:
            assert code_of(getattr(served.stub(token=READER), method), request) == DENIED, method
        assert "login" not in served.engine.store.type_keys()
        assert len(served.engine.contacts) == 0  # nothing refused was stored
        assert write(served.stub(token=WRITER)) == grpc.StatusCode.OK
        assert read(served.stub(token=WRITER)) == grpc.StatusCode.OK
        failures = served.metrics.auth_failures
        assert (failures.labels("missing").value, failures.labels("invalid").value) == (2, 1)
        assert failures.labels("scope").value == len(WRITES)


def test_refusals_say_what_is_missing_and_never_echo_the_token() -> None:
    with serving(Protection(tokens=tokens())) as served:
        with pytest.raises(grpc.RpcError) as missing:
            served.stub().ListEventTypes(pb.ListEventTypesRequest(), timeout=10)
        assert "bearer token" in missing.value.details()
        with pytest.raises(grpc.RpcError) as scope:
            served.stub(token=READER).PutSegment(WRITES[2][1], timeout=10)
        assert "read-write" in scope.value.details() and "dashboards" in scope.value.details()
        assert READER not in scope.value.details()


def test_health_needs_no_token_and_reflection_follows_its_policy() -> None:
    def reflect(channel: grpc.Channel) -> grpc.StatusCode:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        return code_of(lambda timeout: list(stub.ServerReflectionInfo(iter([request]), timeout=timeout)))

    for policy, anonymous, with_token in (("auth", UNAUTHENTICATED, grpc.StatusCode.OK),
                                          ("open", grpc.StatusCode.OK, grpc.StatusCode.OK),
                                          ("off", grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNIMPLEMENTED)):
        with serving(Protection(tokens=tokens(), reflection=policy)) as served:
            plain = client_channel(served.target)
            health = health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status in (health_pb2.HealthCheckResponse.SERVING,
                                     health_pb2.HealthCheckResponse.NOT_SERVING)  # it answers, without a token
            assert reflect(plain) == anonymous, policy
            assert reflect(client_channel(served.target, token=READER)) == with_token, policy


# --------------------------------------------------------------------------- privacy


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logs.configure(fmt="json", level="debug", stream=out)
    try:
        yield out
    finally:
        logging.getLogger().removeHandler(handler)


def test_erasure_leaves_an_audit_line_and_identifiers_stay_out_of_logs() -> None:
    with captured_logs() as out, serving(Protection(tokens=tokens(), access_log=True)) as served:
        stub = served.stub(token=WRITER)
        assert write(stub, "secret.person@example.com") == grpc.StatusCode.OK
        missing = pb.GetContactRequest(contact=pb.ContactRef(ref="email:another.secret@example.com"))
        assert code_of(stub.GetContact, missing) == grpc.StatusCode.NOT_FOUND
        erased = stub.EraseContact(pb.EraseContactRequest(contact=pb.ContactRef(ref="email:secret.person@example.com")))
        assert erased.events_erased == 1
    text = out.getvalue()
    assert "secret.person" not in text and "another.secret" not in text
    records = [json.loads(line) for line in text.splitlines()]
    audit = [r for r in records if r["logger"] == "segmentd.audit"]
    assert len(audit) == 1
    assert audit[0]["event"] == "contact_erased" and audit[0]["contact_id"] == erased.contact_id
    assert audit[0]["events_erased"] == 1 and audit[0]["principal"] == "ingest" and audit[0]["request_id"]
    access = [r for r in records if r["logger"] == "segmentd.access"]
    assert {r["method"].rsplit("/", 1)[1] for r in access} >= {"IngestEvents", "GetContact", "EraseContact"}
    not_found = next(r for r in access if r["code"] == "NOT_FOUND")
    assert logs.REDACTED in not_found["details"]
    assert all(r["request_id"] for r in access) and len({r["request_id"] for r in access}) == len(access)
    assert WRITER not in text


def test_erasure_reaches_the_next_snapshot_and_the_compacted_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine, durability = open_durable(data, clock=lambda: NOW_MS, segment_bytes=1024)
    try:
        engine.upsert_contacts([{"email": "private.person@example.com", "fields": {"city": "Secretville"}}])
        engine.ingest([{"eventTypeKey": "login", "params": {"email": "private.person@example.com"}}])
        for i in range(20):  # other people's writes fill several small log segments
            engine.ingest([{"eventTypeKey": "login", "params": {"email": f"other{i}@example.com"}}])
        assert any(b"private.person" in p.read_bytes() for p in data.iterdir() if p.is_file())
        engine.erase_contact("email:private.person@example.com")
        durability.snapshot_now()
        for i in range(20):
            engine.ingest([{"eventTypeKey": "login", "params": {"email": f"later{i}@example.com"}}])
        durability.snapshot_now()  # the snapshot before it also postdates the erasure now
    finally:
        durability.close()
    for path in data.iterdir():
        if path.is_file():
            body = path.read_bytes()
            assert b"private.person" not in body and b"Secretville" not in body, path.name


# --------------------------------------------------------------------------- the CLI


@dataclass
class TlsServer:
    process: subprocess.Popen[bytes]
    address: str
    workdir: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(20)


@pytest.fixture(scope="module")
def tls_server(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """`segmentd serve` with TLS and tokens, settings from flags, environment and a config file."""
    workdir = tmp_path_factory.mktemp("tls-serve")
    (workdir / "tokens").write_text(TOKENS)
    (workdir / "segmentd.toml").write_text(f'tls_key = "{pki.server_key}"\n')
    address = f"127.0.0.1:{free_port()}"
    env = child_env(SEGMENTD_TOKENS_FILE=str(workdir / "tokens"), SEGMENTD_CONFIG=str(workdir / "segmentd.toml"))
    with open(workdir / "serve.err", "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--listen", address, "--tls-cert", str(pki.server_cert)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )
    server = TlsServer(process, address, workdir)
    channel = client_channel(address, tls=ClientTls(ca=pki.ca))
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            assert process.poll() is None, (workdir / "serve.err").read_text()
            try:
                status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, "the TLS server did not start"
            time.sleep(0.1)
        yield server
    finally:
        channel.close()
        server.stop()


def segmentd(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], cwd=ROOT, env=child_env(**env),
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S, stdin=subprocess.DEVNULL)


def test_the_cli_takes_credentials_from_flags_or_the_environment(tls_server: TlsServer, pki: Pki) -> None:
    events = tls_server.workdir / "events.jsonl"
    events.write_text(json.dumps({"eventTypeKey": "cliLogin", "params": {"email": "cli@example.com"}}) + "\n")
    server = ["--server", tls_server.address]
    by_flags = segmentd("ingest", str(events), *server, "--tls-ca", str(pki.ca), "--token", WRITER)
    assert by_flags.returncode == 0, by_flags.stderr
    assert "accepted 1" in by_flags.stdout
    by_env = segmentd("event-types", *server, SEGMENTD_TLS_CA=str(pki.ca), SEGMENTD_TOKEN=READER)
    assert by_env.returncode == 0 and "cliLogin" in by_env.stdout, by_env.stderr


def test_the_cli_reports_missing_credentials_in_one_line(tls_server: TlsServer, pki: Pki) -> None:
    server = ["--server", tls_server.address]
    no_token = segmentd("event-types", *server, "--tls-ca", str(pki.ca))
    assert no_token.returncode == 1 and "unauthenticated" in no_token.stderr
    assert "Traceback" not in no_token.stderr
    events = tls_server.workdir / "more.jsonl"
    events.write_text(json.dumps({"eventTypeKey": "cliLogin", "params": {"email": "ro@example.com"}}) + "\n")
    read_only = segmentd("ingest", str(events), *server, "--tls-ca", str(pki.ca), "--token", READER)
    assert read_only.returncode == 1 and "permission denied" in read_only.stderr
    plaintext = segmentd("event-types", *server, "--token", READER)
    assert plaintext.returncode == 2 and "Traceback" not in plaintext.stderr
