"""Weights you can trust: the registry, the cache lookup of every Inception loader, fetch (against a loopback HTTP
server on 127.0.0.1 serving a small fake file, with the registry's hash replaced by the fake's) and verify."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import http.server
import json
import random
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import assert_one_line_error

import isgame
from isgame.scoring.classifiers import weights_fetch
from isgame.scoring.classifiers.weights_registry import KNOWN_WEIGHTS

TORCHVISION_FILE = "inception_v3_google-0cc3c7bd.pth"
FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
FAKE = random.Random(0).randbytes(300_000)  # stands in for the ~100 MB published file
FAKE_SHA256 = hashlib.sha256(FAKE).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves the fake file with Range support; ``cut`` sends half the body under a full Content-Length, then closes."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        state = self.server.state
        state.requests.append(self.headers.get("Range"))
        start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0]) if self.headers.get("Range") else 0
        if start and state.honour_range:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(FAKE) - 1}/{len(FAKE)}")
        else:
            start = 0
            self.send_response(200)
        body = FAKE[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if state.cut else body)
        self.wfile.flush()  # HTTP/1.0: the connection closes when this returns, short of Content-Length when cut

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    state = SimpleNamespace(requests=[], cut=False, honour_range=True)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = state
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/{TORCHVISION_FILE}"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def caches(tmp_path, monkeypatch):
    """Empty caches: this process's torch hub under TORCH_HOME, the default one under XDG_CACHE_HOME."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # as if torch.hub.set_dir was never called
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return SimpleNamespace(hub=tmp_path / "torch-home" / "hub" / "checkpoints",
                           default=tmp_path / "xdg" / "torch" / "hub" / "checkpoints")


@pytest.fixture()
def fake_entry(monkeypatch, server):
    """The registry's inception-v3 entry, published at the loopback server with the fake's hash and size."""
    entry = dataclasses.replace(KNOWN_WEIGHTS["inception-v3"], url=server.url, sha256=FAKE_SHA256,
                                size_bytes=len(FAKE))
    monkeypatch.setitem(KNOWN_WEIGHTS, "inception-v3", entry)
    return entry


def test_a_good_download_lands_verified_and_atomically_in_the_torch_hub_cache(caches, server, fake_entry, monkeypatch):
    hashed, real_hash = [], weights_fetch.file_sha256
    monkeypatch.setattr(weights_fetch, "file_sha256",
                        lambda path: hashed.append((path.name, (caches.hub / TORCHVISION_FILE).exists())) or real_hash(path))
    result = isgame.fetch_weights("inception-v3", progress=False)
    assert result.path == caches.hub / TORCHVISION_FILE and result.path.read_bytes() == FAKE
    assert (result.downloaded, result.resumed_from_bytes, result.sha256, result.hash_checked) == (
        True, 0, FAKE_SHA256, "sha256")
    assert hashed == [(TORCHVISION_FILE + ".part", False)]  # hashed as .part, before the real name existed
    assert sorted(p.name for p in caches.hub.iterdir()) == [TORCHVISION_FILE]
    assert isgame.verify_weights(result.path).verdict == "match"
    again = isgame.fetch_weights(TORCHVISION_FILE, progress=False)  # by file name; a verified copy is there
    assert not again.downloaded and server.requests == [None]  # one request in all, with no Range


def test_a_hash_mismatch_leaves_nothing_behind(caches, server, fake_entry, monkeypatch):
    expected = "ab" * 32
    monkeypatch.setitem(KNOWN_WEIGHTS, "inception-v3", dataclasses.replace(fake_entry, sha256=expected))
    with pytest.raises(isgame.WeightsDownloadError) as info:
        isgame.fetch_weights("inception-v3", progress=False)
    message = str(info.value)
    assert "\n" not in message and f"SHA-256 {FAKE_SHA256}, expected {expected}" in message
    assert list(caches.hub.iterdir()) == []  # no final file, no temporary, no .part


def test_a_cut_connection_keeps_the_part_and_says_to_fetch_again(caches, server, fake_entry, cli):
    server.cut = True
    result = cli("weights", "fetch", "inception-v3", "--quiet")
    assert_one_line_error(result, "was cut", f"after {len(FAKE) // 2} of {len(FAKE)} bytes",
                          "run isgame weights fetch inception-v3", "again to resume")
    assert [p.name for p in caches.hub.iterdir()] == [TORCHVISION_FILE + ".part"]
    assert (caches.hub / (TORCHVISION_FILE + ".part")).read_bytes() == FAKE[: len(FAKE) // 2]


@pytest.mark.parametrize("honour_range", [True, False], ids=["resumed", "server-ignores-range"])
def test_a_cut_download_resumes_with_a_range_request(caches, server, fake_entry, honour_range):
    server.cut = True
    with pytest.raises(isgame.WeightsDownloadError, match="again to resume"):
        isgame.fetch_weights("inception-v3", progress=False)
    server.cut, server.honour_range = False, honour_range
    result = isgame.fetch_weights("inception-v3", progress=False)
    half = len(FAKE) // 2
    assert server.requests == [None, f"bytes={half}-"]
    assert result.resumed_from_bytes == (half if honour_range else 0)  # a 200 answer restarts the file cleanly
    assert result.sha256 == FAKE_SHA256 and result.path.read_bytes() == FAKE
    assert sorted(p.name for p in caches.hub.iterdir()) == [TORCHVISION_FILE]


def test_fetch_writes_to_another_cache_dir_and_refuses_an_unreachable_url(caches, server, fake_entry, tmp_path, cli):
    result = cli("weights", "fetch", "inception-v3", "--cache-dir", tmp_path / "mine", "--quiet", "--json", "-")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["path"] == str(tmp_path / "mine" / TORCHVISION_FILE) and payload["downloaded"] is True
    assert not caches.hub.exists()
    dead = f"http://127.0.0.1:{_free_port()}/x.pth"
    assert_one_line_error(cli("weights", "fetch", "inception-v3", "--quiet", "--url", dead),
                          f"cannot reach {dead}", "--url URL")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_verify_names_the_file_a_hash_belongs_to(tmp_path, fake_entry, cli):
    good = tmp_path / "renamed.pth"
    good.write_bytes(FAKE)
    result = isgame.verify_weights(good)
    assert (result.verdict, result.matches, result.named_as, result.ok) == ("match", ("inception-v3",), None, True)
    assert result.to_dict()["sha256"] == FAKE_SHA256 and result.size_bytes == len(FAKE)
    impostor = tmp_path / TORCHVISION_FILE
    impostor.write_bytes(FAKE[:-1] + bytes([FAKE[-1] ^ 1]))
    result = isgame.verify_weights(impostor)
    assert (result.verdict, result.matches, result.named_as, result.ok) == ("mismatch", (), "inception-v3", False)
    assert "isgame weights fetch inception-v3" in result.message
    stranger = tmp_path / "other.bin"
    stranger.write_bytes(b"not weights")
    assert isgame.verify_weights(stranger).verdict == "unknown"
    assert cli("weights", "verify", good).exit_code == 0
    shown = cli("weights", "verify", impostor, "--json", "-")
    assert shown.exit_code == 1 and json.loads(shown.stdout)["verdict"] == "mismatch"
    assert_one_line_error(cli("weights", "verify", tmp_path / "absent.pth"), "no file at")


def test_a_tf_port_file_matches_both_of_its_publishers(tmp_path, monkeypatch):
    for name in ("inception-v3-tf", "pytorch-fid-inception"):
        monkeypatch.setitem(KNOWN_WEIGHTS, name, dataclasses.replace(KNOWN_WEIGHTS[name], sha256=FAKE_SHA256))
    path = tmp_path / PYTORCH_FID_FILE
    path.write_bytes(FAKE)
    result = isgame.verify_weights(path)
    assert result.verdict == "match" and result.matches == ("inception-v3-tf", "pytorch-fid-inception")


def test_only_a_hash_prefix_known_is_checked_and_said(tmp_path, monkeypatch):
    prefix_only = dataclasses.replace(KNOWN_WEIGHTS["inception-v3"], sha256=None, file_name=f"x-{FAKE_SHA256[:8]}.pth")
    monkeypatch.setitem(KNOWN_WEIGHTS, "inception-v3", prefix_only)
    path = tmp_path / prefix_only.file_name
    path.write_bytes(FAKE)
    result = isgame.verify_weights(path)
    assert result.verdict == "prefix-match" and result.ok and "only that prefix is known" in result.message
    assert prefix_only.to_dict()["hash_known"] == "prefix"


def test_the_cli_lists_and_locates_the_known_files(caches, cli):
    result = cli("weights", "list", "--json", "-")
    assert result.exit_code == 0, result.stderr
    listing = json.loads(result.stdout)
    assert [w["file_name"] for w in listing["weights"]] == [TORCHVISION_FILE, FIDELITY_FILE, PYTORCH_FID_FILE]
    assert not any(w["present"] for w in listing["weights"])
    assert listing["cache_dirs"] == [str(caches.hub), str(caches.default)]
    missing = cli("weights", "path", "inception-v3")
    assert missing.exit_code == 1 and missing.stdout.strip() == str(caches.hub / TORCHVISION_FILE)
    assert "isgame weights fetch inception-v3" in missing.stderr
    caches.default.mkdir(parents=True)
    (caches.default / FIDELITY_FILE).write_bytes(b"x")
    found = cli("weights", "path", "inception-v3-tf", "--json", "-")
    assert found.exit_code == 0 and json.loads(found.stdout)["path"] == str(caches.default / FIDELITY_FILE)
    assert_one_line_error(cli("weights", "path", "inception-v4"), "unknown weights 'inception-v4'")


def test_missing_weights_name_the_fetch_command(caches, cli):
    with pytest.raises(isgame.SourceNotFoundError) as info:
        isgame.load_classifier("inception-v3")
    message = str(info.value)
    assert "\n" not in message and str(caches.hub / TORCHVISION_FILE) in message and str(caches.default) in message
    assert "run isgame weights fetch inception-v3" in message and "isgame.fetch_weights('inception-v3')" in message
    assert "weights=PATH" in message
    assert_one_line_error(cli("score", "noise:uniform", "--n", "2", "--splits", "1", "--classifier", "inception-v3"),
                          "run isgame weights fetch inception-v3", "--weights PATH")


@pytest.mark.parametrize("folder, file_name", [("default", FIDELITY_FILE), ("hub", PYTORCH_FID_FILE)],
                         ids=["torch-fidelity-default-cache", "pytorch-fid-copy"])
def test_the_tf_loader_finds_weights_where_torch_fidelity_and_pytorch_fid_cache_them(caches, monkeypatch, folder,
                                                                                      file_name):
    """torch-fidelity downloaded under ~/.cache (no TORCH_HOME then); pytorch-fid's copy of the same bytes serves too."""
    cached = getattr(caches, folder) / file_name
    cached.parent.mkdir(parents=True)
    torch.save({"not": torch.zeros(1)}, cached)  # plain tensors, but not the network's
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    for name in ("inception-v3-tf", "pytorch-fid-inception"):
        monkeypatch.setitem(KNOWN_WEIGHTS, name, dataclasses.replace(KNOWN_WEIGHTS[name], sha256=digest))
    with pytest.raises(isgame.InvalidInputError, match="does not hold torch-fidelity Inception weights") as info:
        isgame.load_classifier("inception-v3-tf")
    assert str(info.value).startswith(str(cached))  # found, hash-checked and read


def test_a_damaged_cached_file_is_refused_not_loaded(caches):
    caches.hub.mkdir(parents=True)
    (caches.hub / TORCHVISION_FILE).write_bytes(b"half a download")
    with pytest.raises(isgame.InvalidInputError) as info:
        isgame.load_classifier("inception-v3")
    message = str(info.value)
    assert f"expected {KNOWN_WEIGHTS['inception-v3'].sha256}" in message
    assert hashlib.sha256(b"half a download").hexdigest() in message and "isgame weights fetch inception-v3" in message


def test_the_registry_agrees_with_its_publishers():
    from torchvision.models import Inception_V3_Weights

    assert KNOWN_WEIGHTS["inception-v3"].url == Inception_V3_Weights.IMAGENET1K_V1.url
    from torch_fidelity import feature_extractor_inceptionv3 as fidelity  # the [test] extra, imported when needed

    assert KNOWN_WEIGHTS["inception-v3-tf"].url == fidelity.URL_INCEPTION_V3
    for entry in KNOWN_WEIGHTS.values():
        assert entry.url.rsplit("/", 1)[1] == entry.file_name
        assert entry.sha256 is None or (len(entry.sha256) == 64 and entry.sha256.startswith(entry.hash_prefix))
        assert len(entry.hash_prefix) == 8
    assert KNOWN_WEIGHTS["inception-v3-tf"].sha256 == KNOWN_WEIGHTS["pytorch-fid-inception"].sha256


def test_only_the_fetch_module_touches_the_network():
    """isgame downloads in one place, only when asked: no other library module imports a network client."""
    network = {"urllib.request", "http.client", "socket", "requests", "httpx", "urllib3", "ftplib"}
    downloads = {"load_state_dict_from_url", "download_url_to_file", "urlopen", "load_url"}
    root = Path(isgame.__file__).resolve().parent
    offenders = []
    for path in [root / "cli.py", root / "__init__.py", *(p for pkg in ("scoring", "attacks", "probes", "app")
                                                           for p in sorted((root / pkg).rglob("*.py")))]:
        if path == Path(weights_fetch.__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            attribute = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
            if any(name.split(".")[0] in network or name in network for name in names) or attribute in downloads:
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, offenders
