"""FaceModel: pack discovery, roles, errors, providers, batching, offline use (real pack in ../shared)."""

from __future__ import annotations

import socket
import warnings
from pathlib import Path

import numpy as np
import pytest

from imm_analysis.faces.model import DETECTOR, GENDERAGE, LANDMARK_3D, RECOGNIZER, FaceModel, PackError, classify_onnx


@pytest.fixture(scope="module")
def model(pack_dir):
    return FaceModel(pack_dir)


def _tiny_head(path: Path, size: int, out_dim: int) -> None:
    """A real, loadable ONNX model with input (1, 3, size, size) and output (1, out_dim)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((3, out_dim)).astype(np.float32) * 0.01, "w")
    b = numpy_helper.from_array(np.full(out_dim, 0.3, np.float32), "b")
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w", "b"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, out_dim])],
        initializer=[w, b],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))


def test_classify_onnx_rules():
    det = [[1, 3, "?", "?"]]
    assert classify_onnx(det, [[None, 1]] * 3 + [[None, 4]] * 3 + [[None, 10]] * 3) == DETECTOR
    assert classify_onnx([[None, 3, 112, 112]], [[None, 512]]) == RECOGNIZER
    assert classify_onnx([[1, 3, 96, 96]], [[1, 3]]) == GENDERAGE
    assert classify_onnx([[1, 3, 192, 192]], [[1, 3309]]) == LANDMARK_3D
    assert classify_onnx([[1, 3, 112, 112]], [[1, 3]]) is None
    assert classify_onnx([[1, 3, 64, 64]], [[1, 128]]) is None


def test_loads_shared_pack(model, pack_dir):
    assert model.files[DETECTOR].name == "det_500m.onnx"
    assert model.files[RECOGNIZER].name == "mobilefacenet_128d.onnx"
    assert model.embedding_dim == 128
    assert model.providers == ["CPUExecutionProvider"]
    assert model.model_id.startswith("mbf128_det500m:det_500m@77a721d93b+mobilefacenet_128d@f055d9c9a4")
    assert not model.has_attributes and not model.has_landmarks_3d
    # the graph does not normalise its input itself, so 127.5/127.5 on RGB (checked on LFW in test_faces_crops)
    assert (model.rec_mean, model.rec_std) == (127.5, 127.5)


def test_second_pack_has_other_id(model, shared_dir):
    other = FaceModel(shared_dir / "models" / "mbf128_scrfd2.5g")
    assert other.model_id != model.model_id
    assert other.files[DETECTOR].name == "scrfd_2.5g_kps.onnx"


def test_batched_recognizer_matches_one_by_one(model):
    crops = np.random.default_rng(1).integers(0, 255, (5, 112, 112, 3), dtype=np.uint8)
    batch = model.embed(crops, batch_size=5)
    ones = np.concatenate([model.embed(crops[i : i + 1], batch_size=1) for i in range(5)])
    assert batch.dtype == np.float32 and batch.shape == (5, 128)
    np.testing.assert_allclose(batch, ones, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_missing_empty_incomplete_pack(tmp_path, pack_dir):
    with pytest.raises(PackError, match="does not exist"):
        FaceModel(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.txt").write_text("x")
    with pytest.raises(PackError, match=r"missing roles detector, recognizer.*README\.txt"):
        FaceModel(empty)
    only_rec = tmp_path / "only_rec"
    only_rec.mkdir()
    (only_rec / "mobilefacenet_128d.onnx").symlink_to(pack_dir / "mobilefacenet_128d.onnx")
    (only_rec / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(PackError) as err:
        FaceModel(only_rec)
    msg = str(err.value)
    assert "missing detector" in msg and "mobilefacenet_128d.onnx -> recognizer" in msg and "broken.onnx" in msg


def test_buffalo_like_pack_uses_optional_models(tmp_path, pack_dir, faces_dir):
    """A pack laid out like buffalo_l: real detector and recognizer, plus genderage and 1k3d68 heads."""
    pack = tmp_path / "buffalo_like"
    pack.mkdir()
    (pack / "det_10g.onnx").symlink_to(pack_dir / "det_500m.onnx")
    (pack / "w600k_r50.onnx").symlink_to(pack_dir / "mobilefacenet_128d.onnx")
    _tiny_head(pack / "genderage.onnx", 96, 3)
    _tiny_head(pack / "1k3d68.onnx", 192, 3309)
    _tiny_head(pack / "unknown_head.onnx", 64, 7)
    m = FaceModel(pack)
    assert m.has_attributes and m.has_landmarks_3d
    assert [p.name for p in m.ignored_files] == ["unknown_head.onnx"]
    assert "genderage@" in m.model_id and "1k3d68@" in m.model_id

    from imm_analysis.faces.embed import embed_images

    res = embed_images([faces_dir / "group" / "t1.jpg"], m, progress=False)
    assert len(res.figures) == 6
    assert res.figures["age"].notna().all() and res.figures["gender"].notna().all()
    assert res.figures[["pitch", "roll", "yaw"]].notna().all().all()


def test_ambiguous_roles_need_explicit_choice(tmp_path, pack_dir):
    pack = tmp_path / "two_recs"
    pack.mkdir()
    (pack / "det_500m.onnx").symlink_to(pack_dir / "det_500m.onnx")
    (pack / "a_rec.onnx").symlink_to(pack_dir / "mobilefacenet_128d.onnx")
    (pack / "b_rec.onnx").symlink_to(pack_dir / "mobilefacenet_128d.onnx")
    with pytest.raises(PackError, match="several files fit the recognizer role"):
        FaceModel(pack)
    m = FaceModel(pack, roles={"recognizer": "b_rec.onnx"})
    assert m.files[RECOGNIZER].name == "b_rec.onnx"


def test_cuda_requested_but_not_used_warns(pack_dir):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here")
    with pytest.warns(RuntimeWarning, match="CUDA"):
        m = FaceModel(pack_dir, providers=["CUDAExecutionProvider", "CPUExecutionProvider"], threads=1)
    assert m.providers == ["CPUExecutionProvider"]


def test_no_network_needed(pack_dir, faces_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        m = FaceModel(pack_dir, det_size=320)
    from imm_analysis.io.media import read_image

    rgb, _ = read_image(faces_dir / "group" / "t1.jpg")
    boxes, kps = m.detect(rgb)
    assert len(boxes) >= 5 and kps.shape == (len(boxes), 5, 2)


def test_bad_arguments(pack_dir):
    with pytest.raises(ValueError, match="det_thresh"):
        FaceModel(pack_dir, det_thresh=1.5)
    with pytest.raises(ValueError, match="unknown role"):
        FaceModel(pack_dir, roles={"detektor": "det_500m.onnx"})
    with pytest.raises(ValueError, match="det_canvas"):
        FaceModel(pack_dir, det_canvas="letterbox")


def test_fit_canvas_is_the_square_canvas_cropped(model, pack_dir, faces_dir):
    """``det_canvas="fit"`` feeds the top-left of the square input, and finds the same faces."""
    from imm_analysis.io.media import read_image

    square = FaceModel(pack_dir, det_canvas="square")
    assert model.det_canvas == "fit"
    photos = sorted((faces_dir / "photos").glob("person_0[0-3]/*.jpg"))
    assert len(photos) >= 8
    pixels_fit = pixels_square = 0
    for path in photos:
        rgb, _ = read_image(path)
        blob_f, scale_f, (w, h) = model.detector_input(rgb)
        blob_s, scale_s, _ = square.detector_input(rgb)
        assert scale_f == scale_s and w % 32 == 0 and h % 32 == 0 and max(w, h) == 640
        assert blob_s.shape == (1, 3, 640, 640) and blob_f.shape == (1, 3, h, w)
        np.testing.assert_array_equal(blob_f, blob_s[:, :, :h, :w])
        pixels_fit, pixels_square = pixels_fit + w * h, pixels_square + 640 * 640
        bf, kf = model.detect(rgb, prepared=(blob_f, scale_f, (w, h)))
        bs, ks = square.detect(rgb, prepared=(blob_s, scale_s, (640, 640)))
        assert len(bf) == len(bs) >= 1, path  # these labelled portraits have no face cut by the edge
        size = max(rgb.shape[:2])
        assert np.abs(bf[:, :4] - bs[:, :4]).max() < 0.01 * size, path
        assert np.abs(kf - ks).max() < 0.01 * size, path
    assert pixels_fit < 0.9 * pixels_square  # the photos are not square: the detector sees less padding


def test_detect_many_equals_detect(model, faces_dir):
    """Batched detection (canvas sizes mixed, batches split) gives what one image at a time gives."""
    import cv2
    import onnxruntime as ort

    from imm_analysis.io.media import read_image

    det = model._sessions[DETECTOR]
    assert det.layouts is not None  # the shared det_500m is exported for one image; patched to batch
    prepared = [model.detector_input(read_image(p)[0]) for p in sorted((faces_dir / "photos").glob("person_0[0-1]/*.jpg"))]
    for p in sorted((faces_dir / "lfw_dev").rglob("*.jpg"))[:9]:
        crop = cv2.copyMakeBorder(read_image(p)[0], 24, 24, 24, 24, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        prepared.append(model.detector_input(crop, det_size=(160, 160)))
    assert len({pr[2] for pr in prepared}) >= 2  # several canvas sizes in one call
    many = model.detect_many(prepared, batch_size=4)
    assert len(many) == len(prepared)
    found = 0
    for pr, (boxes, kps) in zip(prepared, many, strict=True):
        b1, k1 = model.detect(None, prepared=pr)
        assert boxes.shape == b1.shape and kps.shape == k1.shape
        np.testing.assert_allclose(boxes, b1, atol=1e-3)
        np.testing.assert_allclose(kps, k1, atol=1e-3)
        found += len(boxes)
    assert found >= len(prepared)  # a face in every photo and crop
    # one image through the patched graph = the graph as exported
    exported = ort.InferenceSession(str(det.path), providers=["CPUExecutionProvider"])
    for got, want in zip(det.run(prepared[0][0]), exported.run(det.output_names, {det.input_name: prepared[0][0]}),
                         strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_split_batch_layouts():
    from imm_analysis.faces.model import _split_batch

    rng = np.random.default_rng(0)
    per_image = rng.standard_normal((3, 4, 5, 2, 10)).astype(np.float32)  # (image, H, W, anchor, k)
    want = per_image.reshape(3, -1, 10)
    # insightface's exports transpose NCHW to (H, W, N, C) before flattening to (rows, k)
    interleaved = per_image.transpose(1, 2, 0, 3, 4).reshape(-1, 10)
    np.testing.assert_array_equal(_split_batch(interleaved, 3, ("interleaved", 2)), want)
    np.testing.assert_array_equal(_split_batch(want.reshape(-1, 10), 3, ("image-major", 2)), want)
    np.testing.assert_array_equal(_split_batch(want, 3, ("image-major", 2)), want)  # (n, rows, k) as exported
    assert not np.array_equal(_split_batch(interleaved, 3, ("image-major", 2)), want)


def test_every_shared_pack_batches(shared_dir):
    """Both shared packs' detectors and recognizers take batches after the in-memory patch."""
    for name in ("mbf128_det500m", "mbf128_scrfd2.5g"):
        m = FaceModel(shared_dir / "models" / name)
        det, rec = m._sessions[DETECTOR], m._sessions[RECOGNIZER]
        assert rec.layouts is not None and rec.layouts[0][0] == "image-major" and rec.max_batch is None, name
        assert det.layouts is not None and {kind for kind, _ in det.layouts} == {"interleaved"}, name
        assert {a for _, a in det.layouts} == {m._anchors}, name  # found at load, agrees with the head count
