"""Notebook files in S3-compatible object storage: a real `tandem serve` and a real worker
keeping their blobs in moto's S3 server (a child process), and `S3BlobStore` on its own."""

from __future__ import annotations

import hashlib
import io
import random
import uuid
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from botocore.awsrequest import AWSPreparedRequest

from server.config import Settings
from server.db import make_engine
from server.events.bus import EventBus
from server.files.storage import FileStorage, make_store
from server.files.store import S3BlobStore, s3_store
from tests.gateway.conftest import Cluster, running_cluster
from tests.gateway.helpers import run, text_of
from tests.support import Api, YClient, eventually, notebook_with_code, sync_url
from tests.support_s3 import AWS_ENV, REGION, S3Server, running_s3

PREFIX = "some/prefix"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running_s3(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("s3-files"),
        {"s3-worker": ["--max-kernels", "8"]},
        **s3.tandem_env(PREFIX),
    ) as shared:
        yield shared


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3 in this process finds the dummy credentials the usual way (the environment)."""
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_keys(s3: S3Server, notebook_id: str) -> list[str]:
    return s3.keys(f"{PREFIX}/{notebook_id}/")


def put(api: Api, notebook_id: str, path: str, data: bytes) -> None:
    answer = api.client.put(f"/api/notebooks/{notebook_id}/files/{path}", content=data)
    assert answer.status_code == 201, answer.text
    assert answer.json()["sha256"] == sha(data)


def files_on_disk(data_dir: Path) -> set[str]:
    """The names of every file in the server's data dir."""
    return {path.name for path in data_dir.rglob("*") if path.is_file()}


# --- through the server -----------------------------------------------------------------------


def test_an_upload_lands_in_the_bucket_and_downloads_as_sent(
    cluster: Cluster, s3: S3Server
) -> None:
    api = cluster.api("ann")
    nb = api.create("Stored in S3")
    data = b"name,score\nann,3\n"
    put(api, nb, "data/scores.csv", data)

    assert blob_keys(s3, nb) == [f"{PREFIX}/{nb}/{sha(data)}"]
    body = s3.client.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/{nb}/{sha(data)}")["Body"]
    with body:
        assert body.read() == data
    data_dir = cluster.server.data_dir
    assert not (data_dir / "files").exists()
    assert sha(data) not in files_on_disk(data_dir)
    assert not any((data_dir / "staging").iterdir())  # the spooled upload went up and away

    got = api.client.get(f"/api/notebooks/{nb}/files/data/scores.csv")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["etag"] == f'"{sha(data)}"'
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["content-disposition"].startswith('attachment; filename="scores.csv"')
    assert got.headers["x-content-type-options"] == "nosniff"


async def test_a_cell_reads_an_upload_and_what_it_writes_is_kept_in_the_bucket(
    cluster: Cluster, s3: S3Server
) -> None:
    api = cluster.api("ann")
    nb, ids = notebook_with_code(
        api,
        [
            "print(open('data/input.csv').read().upper(), end='')",
            "import os\nos.makedirs('out', exist_ok=True)\n"
            "with open('out/results.csv', 'w') as f:\n    f.write('a,b\\n1,2\\n')",
        ],
    )
    put(api, nb, "data/input.csv", b"x,y\n3,4\n")
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(api, nb, [ids[0]], client, timeout=120)
        assert text_of(client, ids[0]) == "X,Y\n3,4\n"
        await run(api, nb, [ids[1]], client)

    written = b"a,b\n1,2\n"
    got = api.client.get(f"/api/notebooks/{nb}/files/out/results.csv")
    assert got.status_code == 200, got.text
    assert got.content == written
    assert got.headers["etag"] == f'"{sha(written)}"'
    assert f"{PREFIX}/{nb}/{sha(written)}" in blob_keys(s3, nb)


def test_twenty_megabytes_go_up_in_parts_and_come_back_whole(
    cluster: Cluster, s3: S3Server
) -> None:
    api = cluster.api("ann")
    nb = api.create("Large")
    data = random.Random(20).randbytes(20 * 1024 * 1024)
    put(api, nb, "big.bin", data)

    head = s3.client.head_object(Bucket=s3.bucket, Key=f"{PREFIX}/{nb}/{sha(data)}")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # boto3's 8 MB parts: a multipart upload

    digest = hashlib.sha256()
    size = 0
    with api.client.stream("GET", f"/api/notebooks/{nb}/files/big.bin") as got:
        assert got.status_code == 200
        assert got.headers["content-length"] == str(len(data))
        assert got.headers["etag"] == f'"{sha(data)}"'
        for chunk in got.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    assert (size, digest.hexdigest()) == (len(data), sha(data))


def test_a_deleted_file_s_blob_stays_for_the_grace_then_the_sweep_drops_it(
    cluster: Cluster, s3: S3Server, aws_env: None
) -> None:
    api = cluster.api("ann")
    nb = api.create("Swept")
    kept, dropped = b"kept\n", b"deleted soon\n"
    put(api, nb, "kept.txt", kept)
    put(api, nb, "gone.txt", dropped)
    assert api.client.delete(f"/api/notebooks/{nb}/files/gone.txt").status_code == 204
    # The server's own sweep (after the delete) keeps blobs younger than an hour: a blob put
    # moments ago may be one whose row is not committed yet.
    assert f"{PREFIX}/{nb}/{sha(dropped)}" in blob_keys(s3, nb)

    settings = Settings(
        data_dir=cluster.server.data_dir,
        files_url=f"s3://{s3.bucket}/{PREFIX}",
        s3_endpoint_url=s3.endpoint_url,
        s3_region=REGION,
    )
    engine = make_engine(settings)
    store = make_store(settings)
    assert isinstance(store, S3BlobStore)
    try:
        files = FileStorage(settings, engine, EventBus(), store)
        assert files.sweep(nb, grace=timedelta(0)) == 1
    finally:
        store.close()
        engine.dispose()
    assert blob_keys(s3, nb) == [f"{PREFIX}/{nb}/{sha(kept)}"]
    assert api.client.get(f"/api/notebooks/{nb}/files/kept.txt").content == kept


async def test_deleting_the_notebook_removes_all_its_objects(
    cluster: Cluster, s3: S3Server
) -> None:
    api = cluster.api("ann")
    nb, other = api.create("Doomed"), api.create("Neighbour")
    same = b"in both notebooks\n"
    put(api, nb, "a.txt", same)
    put(api, nb, "deep/b.txt", b"b\n")
    put(api, other, "a.txt", same)
    assert len(blob_keys(s3, nb)) == 2

    assert api.client.delete(f"/api/notebooks/{nb}").status_code == 204
    await eventually(lambda: blob_keys(s3, nb) == [])
    assert blob_keys(s3, other) == [f"{PREFIX}/{other}/{sha(same)}"]


async def test_the_archive_holds_the_notebook_and_its_files_from_the_bucket(
    cluster: Cluster,
) -> None:
    api = cluster.api("ann")
    nb = api.create("Archived")
    put(api, nb, "data/a.csv", b"x\n1\n")
    put(api, nb, "b.bin", bytes(range(256)) * 4096)

    got = api.client.get(f"/api/notebooks/{nb}/archive")
    assert got.status_code == 200, got.text
    assert got.headers["content-disposition"].startswith('attachment; filename="Archived.zip"')
    with zipfile.ZipFile(io.BytesIO(got.content)) as zf:
        assert set(zf.namelist()) >= {"Archived.ipynb", "data/a.csv", "b.bin"}
        assert zf.read("data/a.csv") == b"x\n1\n"
        assert zf.read("b.bin") == bytes(range(256)) * 4096
    # The zip was built in the staging folder; it goes once sent (a background task).
    staging = cluster.server.data_dir / "staging"
    await eventually(lambda: not any(staging.iterdir()))


# --- the store on its own ---------------------------------------------------------------------


@pytest.fixture
def store(s3: S3Server, tmp_path: Path, aws_env: None) -> Iterator[S3BlobStore]:
    made = s3_store(
        f"s3://{s3.bucket}/unit/{uuid.uuid4().hex}/", s3.endpoint_url, REGION, tmp_path / "staging"
    )
    yield made
    made.close()


def staged(store: S3BlobStore, data: bytes) -> Path:
    handle, path = store.stage()
    with handle:
        handle.write(data)
    return path


def test_a_put_blob_opens_lists_and_deletes(store: S3BlobStore) -> None:
    data = b"content\n"
    source = staged(store, data)
    store.put("nb1", sha(data), source)
    assert not source.exists()  # consumed

    with store.open("nb1", sha(data)) as blob:
        assert blob.read() == data
    assert store.local_path("nb1", sha(data)) is None
    [listed] = store.blobs("nb1")
    assert listed.sha256 == sha(data)
    assert listed.modified.tzinfo is not None
    assert store.blobs("nb") == []  # a notebook whose id starts another's has nothing

    store.delete("nb1", sha(data))
    assert store.blobs("nb1") == []
    store.delete("nb1", sha(data))  # deleting what is gone is no error


def test_opening_a_missing_blob_is_file_not_found(store: S3BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.open("nb1", sha(b"never put"))


def test_drop_removes_one_notebook_s_blobs_only(store: S3BlobStore) -> None:
    for notebook_id, data in [("nb1", b"1"), ("nb1", b"2"), ("nb2", b"3")]:
        store.put(notebook_id, sha(data), staged(store, data))
    assert len(store.blobs("nb1")) == 2
    store.drop("nb1")
    assert store.blobs("nb1") == []
    assert [blob.sha256 for blob in store.blobs("nb2")] == [sha(b"3")]


def test_uploads_to_an_s3_compatible_server_carry_no_checksums_it_may_refuse(
    store: S3BlobStore,
) -> None:
    sent: list[tuple[str, dict[str, str]]] = []

    def record(request: AWSPreparedRequest, event_name: str, **_: object) -> None:
        sent.append((event_name, {k.lower(): str(v) for k, v in request.headers.items()}))

    store._client.meta.events.register("before-send.s3", record)  # the store's own client
    small, large = b"small", random.Random(9).randbytes(9 * 1024 * 1024)  # one put, 2 parts
    for data in (small, large):
        store.put("nb1", sha(data), staged(store, data))
    with store.open("nb1", sha(large)) as blob:
        assert blob.read() == large

    operations = {name.rsplit(".", 1)[-1] for name, _ in sent}
    assert {"PutObject", "CreateMultipartUpload", "UploadPart", "GetObject"} <= operations
    for name, headers in sent:
        assert not [h for h in headers if h.startswith(("x-amz-checksum", "x-amz-sdk-checksum"))]
        assert headers.get("content-encoding") != "aws-chunked", name


def test_urls_name_the_bucket_and_the_prefix(s3: S3Server, tmp_path: Path, aws_env: None) -> None:
    for url, prefix in [
        (f"s3://{s3.bucket}", ""),
        (f"s3://{s3.bucket}/", ""),
        (f"s3://{s3.bucket}/a/b", "a/b/"),
        (f"s3://{s3.bucket}//a/b//", "a/b/"),
    ]:
        made = s3_store(url, s3.endpoint_url, REGION, tmp_path)
        made.close()
        assert (made.bucket, made.prefix) == (s3.bucket, prefix)
    with pytest.raises(ValueError, match="s3://BUCKET"):
        s3_store("s3:///prefix", s3.endpoint_url, REGION, tmp_path)
