#!/usr/bin/python3
"""Writes what a user brings to gos, for the tests of `--data images:DIR` and `--data arrays:DIR`.

Run with Debian's /usr/bin/python3 (python3-torch, python3-pil, python3-numpy from scripts/setup.sh):

    /usr/bin/python3 scripts/make_own_data_fixtures.py OUTPUT_DIR

OUTPUT_DIR/images/{train,val,test}/<class>/*.png|*.jpg: three classes of coloured shapes (disc,
square, stripes) drawn at several sizes, as RGB, grey and RGBA PNG files and RGB JPEG files.
OUTPUT_DIR/rgb_classifier.onnx: a small CNN trained on them with PyTorch, ImageNet's mean and std
applied in the data pipeline (outside the model) as torchvision users do, exported with a dynamic
height and width (so gos needs --input-shape 1,3,32,32).
OUTPUT_DIR/rgb_predictions.json: PyTorch's top-1 prediction for each test image, decoded by PIL,
resized (shorter side to 32, bilinear) and centre-cropped to 32x32, in gos's order (classes sorted,
files sorted).
OUTPUT_DIR/arrays/{x,y}_{train,val,test}.npy: a 1-D regression (the frequency and amplitude of a
noisy sine, two targets per window of 64 samples) and OUTPUT_DIR/signal_regressor.onnx trained on
it. Everything is seeded; the build writes it into build/fixtures/own; nothing is committed.
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image, ImageDraw

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
CLASSES = ["disc", "square", "stripes"]
SIZES = [(32, 32), (40, 36), (48, 64), (30, 45)]
PER_SPLIT = {"train": 60, "val": 12, "test": 24}


def draw(kind, size, rng):
    width, height = size
    background = tuple(int(v) for v in rng.integers(0, 90, 3))
    colour = tuple(int(v) for v in rng.integers(130, 256, 3))
    image = Image.new("RGB", size, background)
    pen = ImageDraw.Draw(image)
    side = min(width, height)
    cx, cy = width / 2 + rng.uniform(-3, 3), height / 2 + rng.uniform(-3, 3)
    r = side * rng.uniform(0.25, 0.4)
    if kind == "disc":
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif kind == "square":
        pen.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colour)
    else:
        step = max(3, side // 6)
        for x in range(0, width, 2 * step):
            pen.rectangle([x, 0, x + step - 1, height], fill=colour)
    noise = rng.normal(0, 8, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def write_images(root, rng):
    for split, count in PER_SPLIT.items():
        for kind in CLASSES:
            folder = root / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = draw(kind, SIZES[i % len(SIZES)], rng)
                form = i % 4
                if form == 0:
                    image.save(folder / f"{i:03d}.png")
                elif form == 1:
                    image.convert("L").convert("RGB").convert("L").save(folder / f"{i:03d}.png")
                elif form == 2:
                    image.convert("RGBA").save(folder / f"{i:03d}.png")
                else:
                    image.save(folder / f"{i:03d}.jpg", quality=95)


def load_split(root, split):
    """torchvision's eval transform: Resize(32) (shorter side, bilinear), CenterCrop(32), ToTensor."""
    xs, ys = [], []
    for label, kind in enumerate(CLASSES):
        for path in sorted((root / split / kind).iterdir()):
            image = Image.open(path).convert("RGB")
            w, h = image.size
            scale = 32 / min(w, h)
            image = image.resize((max(32, round(w * scale)), max(32, round(h * scale))), Image.BILINEAR)
            w, h = image.size
            left, top = int(round((w - 32) / 2.0)), int(round((h - 32) / 2.0))
            image = image.crop((left, top, left + 32, top + 32))
            xs.append(np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0)
            ys.append(label)
    x = torch.tensor(np.stack(xs))
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x, torch.tensor(ys)


class RgbClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        block = lambda i, o: [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]
        self.features = nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 32))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, len(CLASSES))

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


def fit(model, x, y, loss_fn, epochs, lr):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), 32):
            batch = order[start:start + 32]
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
    model.eval()


def sine_windows(count, rng):
    t = np.arange(64, dtype=np.float32) / 64
    frequency = rng.uniform(1, 6, count).astype(np.float32)
    amplitude = rng.uniform(0.5, 2, count).astype(np.float32)
    phase = rng.uniform(0, 2 * math.pi, count).astype(np.float32)
    x = amplitude[:, None] * np.sin(2 * math.pi * frequency[:, None] * t[None, :] + phase[:, None])
    x += rng.normal(0, 0.1, x.shape).astype(np.float32)
    return x[:, None, :].astype(np.float32), np.stack([frequency, amplitude], axis=1)


class SignalRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(1, 16, 5, padding=2), nn.ReLU(), nn.Conv1d(16, 32, 5, padding=2, stride=2), nn.ReLU(),
                                      nn.Conv1d(32, 32, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(32, 2)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=2))


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1)
    rng = np.random.default_rng(1)

    images = out / "images"
    write_images(images, rng)
    x_train, y_train = load_split(images, "train")
    model = RgbClassifier()
    fit(model, x_train, y_train, nn.functional.cross_entropy, epochs=12, lr=3e-3)
    x_test, y_test = load_split(images, "test")
    with torch.no_grad():
        predictions = model(x_test).argmax(1)
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), out / "rgb_classifier.onnx", input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}}, opset_version=13)
    (out / "rgb_predictions.json").write_text(json.dumps({
        "classes": CLASSES,
        "predictions": predictions.tolist(),
        "accuracy": float((predictions == y_test).float().mean() * 100),
    }))

    arrays = out / "arrays"
    arrays.mkdir(exist_ok=True)
    splits = {"train": 1200, "val": 200, "test": 300}
    data = {split: sine_windows(count, rng) for split, count in splits.items()}
    for split, (x, y) in data.items():
        np.save(arrays / f"x_{split}.npy", x)
        np.save(arrays / f"y_{split}.npy", y.astype(np.float32))
    regressor = SignalRegressor()
    fit(regressor, torch.tensor(data["train"][0]), torch.tensor(data["train"][1]), nn.functional.smooth_l1_loss, epochs=25, lr=3e-3)
    torch.onnx.export(regressor, torch.zeros(1, 1, 64), out / "signal_regressor.onnx", input_names=["window"], output_names=["targets"],
                      dynamic_axes={"window": {0: "batch"}, "targets": {0: "batch"}}, opset_version=13)
    with torch.no_grad():
        x, y = data["test"]
        mae = float((regressor(torch.tensor(x)) - torch.tensor(y)).abs().mean())
    (out / "manifest.json").write_text(json.dumps({"signal_regressor_test_mae": mae}))


if __name__ == "__main__":
    main()
