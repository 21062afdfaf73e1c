"""Hostile media input (issue 11, items 6, 7, 9, 10, 11): no crash, no hang, no silent loss, no escape.

Each case is built on disk here (headers of huge images, FIFOs, sockets, device links, URIs that
leave their root); the runs use the real model pack and photos of ``../shared`` where needed.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import warnings
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from imm_analysis.io.media import (
    MAX_DECODE_BYTES,
    MAX_MEDIA_BYTES,
    MAX_PIXELS,
    MediaError,
    MediaWarning,
    clean_reason,
    file_sha256,
    read_image,
    read_media_bytes,
    sample_video,
)

pytestmark = pytest.mark.timeout(300)  # a hang is a failure, not a stuck suite


def _png_header(width: int, height: int, *, bit_depth: int = 8, color_type: int = 2) -> bytes:
    """A PNG with a valid IHDR for ``width`` x ``height`` and a tiny IDAT (a few hundred bytes in all)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def model(pack_dir):
    from imm_analysis.faces.model import FaceModel

    return FaceModel(pack_dir, det_size=480)


@pytest.fixture()
def photos(faces_dir, tmp_path):
    """Four real photos (copies) in a folder of their own."""
    d = tmp_path / "photos"
    d.mkdir()
    for i, p in enumerate(sorted((faces_dir / "photos").glob("person_0[0-1]/*.jpg"))[:4]):
        (d / f"{i:02d}.jpg").write_bytes(p.read_bytes())
    return d


# ------------------------------------------------------------------------------------------ item 6
def test_pixel_limit_is_per_call_and_pil_global_untouched(model, photos, tmp_path):
    from PIL import Image

    from imm_analysis.faces.embed import embed_images

    before = Image.MAX_IMAGE_PIXELS
    assert before is not None
    res = embed_images(photos, model, workers=2, progress=False)
    assert len(res.files) == 4
    assert Image.MAX_IMAGE_PIXELS == before  # two decoding threads did not leave the guard off
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(50_000, 50_000))
    with pytest.raises(MediaError, match="over the pixel limit"):
        read_image(bomb)
    over_ours = tmp_path / "over_ours.png"  # under Pillow's limit, over the one passed to this call
    over_ours.write_bytes(_png_header(2_000, 1_000))
    with pytest.raises(MediaError, match="over the limit of 1,000,000"):
        read_image(over_ours, max_pixels=1_000_000)
    with pytest.raises(Image.DecompressionBombError):  # Pillow's own guard is still on for everyone
        Image.open(bomb)


def test_small_file_with_huge_dimensions_is_refused_before_decoding(tmp_path):
    # 9,000 x 9,000 RGBA at 16 bits per channel: 81 Mpx, under MAX_PIXELS, a few hundred bytes on disk
    p = tmp_path / "wide.png"
    p.write_bytes(_png_header(9_000, 9_000, bit_depth=16, color_type=6))
    assert p.stat().st_size < 1_000 and 9_000 * 9_000 < MAX_PIXELS
    with pytest.raises(MediaError, match="MAX_DECODE_BYTES") as err:
        read_image(p)
    assert f"{MAX_DECODE_BYTES:,}" in str(err.value)
    # the same limit is a parameter: a generous one lets the (truncated) file reach the decoder
    with pytest.raises(MediaError, match="not a readable image"):
        read_image(tmp_path / "wide.png", max_decode_bytes=None, max_pixels=None)


def test_a_normal_image_is_within_every_limit(faces_dir):
    photo = sorted((faces_dir / "photos").glob("person_00/*.jpg"))[0]
    rgb, info = read_image(photo)
    assert rgb.shape[:2] == (info.height, info.width)
    assert photo.stat().st_size < MAX_MEDIA_BYTES


# ------------------------------------------------------------------------------------------ item 7
@pytest.fixture()
def special(tmp_path):
    """A folder of special files with media names, and one unreadable subfolder, beside a real photo."""
    d = tmp_path / "special"
    d.mkdir()
    os.mkfifo(d / "pipe.jpg")
    fifo = tmp_path / "elsewhere.fifo"
    os.mkfifo(fifo)
    (d / "link_to_pipe.jpg").symlink_to(fifo)
    (d / "zero.jpg").symlink_to("/dev/zero")
    (d / "video_pipe.mp4").symlink_to(fifo)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(d / "sock.png"))
    (d / "locked").mkdir()
    (d / "locked" / "hidden.jpg").write_bytes(b"not reached")
    yield d
    sock.close()


@pytest.mark.parametrize("name", ["pipe.jpg", "link_to_pipe.jpg", "zero.jpg", "sock.png"])
def test_read_image_refuses_special_files_without_blocking(special, name):
    with pytest.raises(MediaError, match="not a regular file"):
        read_image(special / name)
    with pytest.raises(MediaError, match="not a regular file"):
        read_media_bytes(special / name)
    with pytest.raises(MediaError, match="not a regular file"):
        file_sha256(special / name)


def test_byte_limit_per_media_file(tmp_path):
    p = tmp_path / "big.jpg"
    p.write_bytes(b"\xff\xd8" + b"\0" * 4_000)
    with pytest.raises(MediaError, match="over the limit of 1,000"):
        read_media_bytes(p, max_bytes=1_000)
    data, st = read_media_bytes(p, max_bytes=10_000)
    assert len(data) == st.st_size == 4_002


def _lock(folder: Path, monkeypatch) -> None:
    """Make ``folder`` unlistable (root ignores permission bits, so then listing it is made to fail)."""
    if os.geteuid() != 0:
        folder.chmod(0)
        return
    real = os.scandir

    def scandir(path="."):
        if os.path.realpath(path) == os.path.realpath(folder):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_special_files_and_unlistable_folders_become_error_rows(model, special, photos, monkeypatch):
    from imm_analysis.faces.embed import embed_images

    (special / "ok.jpg").write_bytes(next(photos.iterdir()).read_bytes())
    _lock(special / "locked", monkeypatch)
    try:
        res = embed_images(special, model, progress=False, workers=2)
    finally:
        (special / "locked").chmod(0o755)
    assert list(res.files["filename"]) == ["ok.jpg"]
    reasons = dict(zip(res.errors["path"].map(lambda p: Path(p).name), res.errors["reason"], strict=True))
    assert set(reasons) == {"pipe.jpg", "link_to_pipe.jpg", "zero.jpg", "sock.png", "video_pipe.mp4", "locked"}
    for name in ("pipe.jpg", "link_to_pipe.jpg", "video_pipe.mp4"):
        assert reasons[name] == "not a regular file (FIFO)"
    assert reasons["zero.jpg"] == "not a regular file (character device)"
    assert reasons["sock.png"] == "not a regular file (socket)"
    assert reasons["locked"].startswith("cannot list folder")


# ------------------------------------------------------------------------------------------ item 9
def test_every_uri_is_confined_under_uri_root(model, photos, tmp_path):
    from imm_analysis.faces.embed import embed_images, resolve_sources

    root = tmp_path / "oss"
    (root / "bucket").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    good = sorted(photos.iterdir())
    (root / "bucket" / "a.jpg").write_bytes(good[0].read_bytes())
    (outside / "x.jpg").write_bytes(good[1].read_bytes())
    (root / "bucket" / "escape.jpg").symlink_to(outside / "x.jpg")  # inside the root, pointing out
    frame = pd.DataFrame({"uri": [
        "oss://bucket/a.jpg",  # fine
        str(outside / "x.jpg"),  # absolute, no scheme, outside the root
        "../outside/x.jpg",  # relative, no scheme, leaves the root
        "oss://bucket/../../outside/x.jpg",  # a scheme URI with '..'
        "oss://bucket/escape.jpg",  # a symlink out of the root
        None,  # a null uri
        "bucket/a.jpg",  # relative, no scheme, under the root: the same bytes again
    ]})
    items = resolve_sources(frame, uri_root=root)
    assert [it.error is None for it in items] == [True, False, False, False, False, False, True]
    res = embed_images(frame, model, uri_root=root, progress=False)  # no exception: one bad URI never aborts
    assert list(res.files["uri"]) == ["oss://bucket/a.jpg"]
    errors = res.errors.set_index("uri")
    assert len(res.errors) == 6
    for uri in (str(outside / "x.jpg"), "../outside/x.jpg", "oss://bucket/../../outside/x.jpg", "oss://bucket/escape.jpg"):
        assert errors.loc[uri, "error"] == "PathError" and "leaves its root" in errors.loc[uri, "reason"]
    assert errors.loc["<row 5>", "reason"] == "row 5 of the files frame has a null uri"
    assert errors.iloc[-1]["error"] == "DuplicateFile"
    # a mapping root follows the same rule
    mapped = resolve_sources(["oss://bucket/a.jpg", "oss://bucket/escape.jpg", "s3://other/x.jpg"],
                             uri_root={"oss://bucket/": root / "bucket"})
    assert [it.error is None for it in mapped] == [True, False, False]
    assert "no uri_root entry matches" in mapped[2].error


# ------------------------------------------------------------------------------------------ item 10
def _raise_media_error(path: str) -> None:
    raise MediaError(path, "not a readable image (truncated)")


def test_media_error_survives_pickling_and_worker_processes():
    err = pickle.loads(pickle.dumps(MediaError("/x/a.jpg", "truncated")))
    assert (type(err), err.path, err.reason, str(err)) == (MediaError, "/x/a.jpg", "truncated", "/x/a.jpg: truncated")
    with ProcessPoolExecutor(max_workers=1) as pool:
        fut = pool.submit(_raise_media_error, "/y/b.png")
        with pytest.raises(MediaError) as info:
            fut.result(timeout=120)
    assert (info.value.path, info.value.reason) == ("/y/b.png", "not a readable image (truncated)")


# ------------------------------------------------------------------------------------------ item 11
def test_error_reasons_carry_no_memory_address(model, tmp_path):
    from imm_analysis.faces.embed import embed_images

    d = tmp_path / "bad"
    d.mkdir()
    (d / "garbage.png").write_bytes(b"this is not an image at all")
    with pytest.raises(MediaError) as info:
        read_image(d / "garbage.png")
    assert "0x" not in str(info.value) and "cannot identify image file" in info.value.reason
    cache = tmp_path / "cache"
    first = embed_images(d, model, cache_dir=cache, progress=False)
    assert "0x" not in first.errors["reason"].iloc[0]
    # a reason cached by an earlier release, address included, is cleaned when read back
    (record,) = cache.glob("*/part-*.errors.parquet")
    frame = pd.read_parquet(record)
    frame["reason"] = "not a readable image (cannot identify image file <_io.BytesIO object at 0x7f3a2c1b0d60>)"
    frame.to_parquet(record, index=False)
    again = embed_images(d, model, cache_dir=cache, progress=False)
    assert again.stats["cached_files"] == 1
    assert again.errors["reason"].iloc[0] == "not a readable image (cannot identify image file the file)"
    assert clean_reason("<foo.Bar object at 0xdeadbeef> x") == "the file x"


def test_partly_corrupted_video_warns_or_is_an_error_row(shared_dir, tmp_path):
    src = (shared_dir / "faces" / "video" / "short_hamilton_clip.mp4").read_bytes()
    n = len(src)
    garbled = tmp_path / "garbled.mp4"  # the middle quarter overwritten: the file opens, decoding stops early
    garbled.write_bytes(src[: n // 2] + bytes(range(256)) * (n // 4 // 256) + src[n // 2 + (n // 4 // 256) * 256 :])
    with pytest.warns(MediaWarning, match="video used in part"):
        frames = list(sample_video(garbled, 1.0))
    assert 0 < len(frames) < 10  # 9.2 s at 1 frame per second is 10 frames when whole
    truncated = tmp_path / "truncated.mp4"  # the index at the end is gone: an error, not a crash
    truncated.write_bytes(src[: n * 6 // 10])
    with warnings.catch_warnings():
        warnings.simplefilter("error", MediaWarning)
        with pytest.raises(MediaError, match="not a readable video"):
            list(sample_video(truncated, 1.0))


def test_embed_images_uses_a_partly_corrupted_video_with_a_warning(model, shared_dir, tmp_path):
    from imm_analysis.faces.embed import embed_images

    src = (shared_dir / "faces" / "video" / "short_hamilton_clip.mp4").read_bytes()
    n = len(src)
    garbled = tmp_path / "garbled.mp4"
    garbled.write_bytes(src[: n // 2] + bytes(range(256)) * (n // 4 // 256) + src[n // 2 + (n // 4 // 256) * 256 :])
    with pytest.warns(MediaWarning, match="garbled.mp4: video used in part"):
        res = embed_images([garbled], model, progress=False, video_fps=1.0)
    assert list(res.files["filename"]) == ["garbled.mp4"] and len(res.errors) == 0
    assert 0 < res.figures["frame_index"].nunique() < 10


def test_video_rate_above_the_videos_samples_every_frame(shared_dir):
    import itertools

    clip = shared_dir / "faces" / "video" / "short_hamilton_clip.mp4"
    # a requested rate far above the video's: every frame, in order (it used to loop on ever smaller steps)
    frames = sample_video(clip, 1e12)
    try:
        assert [i for i, _, _ in itertools.islice(frames, 4)] == [0, 1, 2, 3]
    finally:
        frames.close()
    for bad in (float("inf"), float("nan"), 0.0, -1.0):
        with pytest.raises(ValueError, match="video_fps"):
            next(sample_video(clip, bad))


def test_a_mapping_prefix_matches_whole_path_segments(tmp_path):
    from imm_analysis.faces.embed import resolve_sources

    root = tmp_path / "photos"
    items = resolve_sources(["oss://photos/a.jpg", "oss://photos-private/b.jpg", "oss://photos"],
                            uri_root={"oss://photos": root})
    assert items[0].error is None and items[0].path == root.resolve() / "a.jpg"
    assert "no uri_root entry matches" in items[1].error  # another bucket, not root/-private/b.jpg
    assert items[2].error is None
