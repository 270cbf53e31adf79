"""utils/data/download.py against a local HTTP server (127.0.0.1) serving a tiny MAESTRO-like zip."""
import hashlib
import http.server
import io
import threading
import zipfile

import pytest

from utils.data.download import (ArchiveError, ChecksumError, DownloadError, download_file, download_maestro,
                            extract_zip, md5sum)


def _tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        zipped.writestr("maestro-v2.0.0/maestro-v2.0.0.json", '[{"split": "train"}]')
        zipped.writestr("maestro-v2.0.0/2004/piece.midi", b"MThd" + bytes(range(256)) * 40)
    return buffer.getvalue()


class _Server:
    """Serves ``files`` (name -> bytes); honours Range unless ``ranges`` is False; logs Range headers."""

    def __init__(self, files):
        self.files, self.ranges, self.range_headers = files, True, []
        server_state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = server_state.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                requested = self.headers.get("Range")
                server_state.range_headers.append(requested)
                start = int(requested[len("bytes="):-1]) if requested and server_state.ranges else 0
                if start >= len(body) and start:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def archive():
    return _tiny_zip()


@pytest.fixture
def server(archive):
    running = _Server({"maestro-v2.0.0.zip": archive, "other.bin": b"x" * 1000})
    yield running
    running.close()


def test_md5sum(tmp_path, archive):
    path = tmp_path / "a.zip"
    path.write_bytes(archive)
    assert md5sum(path) == hashlib.md5(archive).hexdigest()


def test_download_maestro_downloads_verifies_extracts(tmp_path, server, archive):
    dataset = download_maestro(tmp_path, url=server.url("maestro-v2.0.0.zip"), md5=hashlib.md5(archive).hexdigest())
    assert dataset == tmp_path / "maestro-v2.0.0"
    assert (dataset / "maestro-v2.0.0.json").read_text() == '[{"split": "train"}]'
    assert (dataset / "2004" / "piece.midi").read_bytes() == b"MThd" + bytes(range(256)) * 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maestro-v2.0.0"]  # archive and staging removed
    # A second call finds the folder and does not contact the server.
    server.range_headers.clear()
    assert download_maestro(tmp_path, url=server.url("maestro-v2.0.0.zip")) == dataset
    assert server.range_headers == []


def test_resume_partial_download(tmp_path, server, archive):
    half = len(archive) // 2
    (tmp_path / "maestro-v2.0.0.zip.part").write_bytes(archive[:half])
    path = download_file(server.url("maestro-v2.0.0.zip"), tmp_path / "maestro-v2.0.0.zip",
                         md5=hashlib.md5(archive).hexdigest())
    assert server.range_headers == [f"bytes={half}-"]
    assert path.read_bytes() == archive
    assert not (tmp_path / "maestro-v2.0.0.zip.part").exists()


def test_complete_partial_file_is_finished(tmp_path, server, archive):
    (tmp_path / "maestro-v2.0.0.zip.part").write_bytes(archive)  # server answers 416 to the range
    path = download_file(server.url("maestro-v2.0.0.zip"), tmp_path / "maestro-v2.0.0.zip",
                         md5=hashlib.md5(archive).hexdigest())
    assert path.read_bytes() == archive


def test_server_without_ranges_restarts(tmp_path, server, archive):
    server.ranges = False
    (tmp_path / "maestro-v2.0.0.zip.part").write_bytes(b"junk" * 10)
    path = download_file(server.url("maestro-v2.0.0.zip"), tmp_path / "maestro-v2.0.0.zip",
                         md5=hashlib.md5(archive).hexdigest())
    assert path.read_bytes() == archive


def test_md5_mismatch(tmp_path, server):
    with pytest.raises(ChecksumError, match=r"other\.bin: md5 [0-9a-f]{32} does not match the expected 0{32}"):
        download_file(server.url("other.bin"), tmp_path / "other.bin", md5="0" * 32)
    assert list(tmp_path.iterdir()) == []  # the bad download is not kept


def test_http_error(tmp_path, server):
    with pytest.raises(DownloadError, match=r"missing\.zip: HTTP 404"):
        download_file(server.url("missing.zip"), tmp_path / "missing.zip")


def test_corrupt_zip(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ArchiveError, match=r"bad\.zip: corrupt zip archive"):
        extract_zip(bad, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_zip_member_escaping_target(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zipped:
        zipped.writestr("../outside.txt", "x")
    with pytest.raises(ArchiveError, match=r"evil\.zip: member '\.\./outside\.txt' would be written outside"):
        extract_zip(evil, tmp_path / "out")
    assert not (tmp_path / "outside.txt").exists()
