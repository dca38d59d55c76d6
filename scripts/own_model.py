#!/usr/bin/python3
"""A user's own models and data, made the way a PyTorch user makes them, for bench/own-model.sh.

    /usr/bin/python3 scripts/own_model.py images OUT [--epochs 6]   # Fashion-MNIST as RGB PNG files, a CNN on them
    /usr/bin/python3 scripts/own_model.py arrays OUT [--epochs 20]  # a 1-D regression as .npy arrays, a 1-D CNN on it

images: writes Fashion-MNIST (Debian's dataset-fashion-mnist) as an ImageFolder of RGB PNG files at
32x32 (OUT/data/{train,val,test}/<class>/NNNNN.png; the 28x28 grey images padded by 2 and
repeated over three channels; the last 5,000 training images are val), trains an RGB CNN on the
files with torchvision's habits (ImageNet mean and std applied in the data pipeline, outside the
model; random crops with padding 4 and horizontal flips), and exports OUT/model.onnx.

arrays: writes OUT/data/{x,y}_{train,val,test}.npy, windows of 256 samples of a noisy two-tone
signal (the targets: both frequencies, in Hz at 64 Hz sampling), trains a 1-D CNN regressor and
exports OUT/model.onnx.

Both print one JSON line with the test accuracy (or MAE) and the training time. Seeded.
"""
import argparse
import gzip
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# Folder names in label order: an ImageFolder's classes are its sorted folder names (torchvision's
# convention, and gos's), so the digit keeps Fashion-MNIST's label i the i-th folder.
CLASSES = ["0-t-shirt", "1-trouser", "2-pullover", "3-dress", "4-coat", "5-sandal", "6-shirt", "7-sneaker", "8-bag", "9-ankle-boot"]


def idx(name):
    with gzip.open(FASHION_MNIST / name) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_folder(root):
    """Returns the splits as uint8 arrays [N,32,32,3] with labels, and writes them as PNG files once."""
    train_x, train_y = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
    test_x, test_y = idx("t10k-images-idx3-ubyte.gz"), idx("t10k-labels-idx1-ubyte.gz")
    splits = {"train": (train_x[:55000], train_y[:55000]), "val": (train_x[55000:], train_y[55000:]), "test": (test_x, test_y)}
    rgb = {}
    for split, (x, y) in splits.items():
        padded = np.pad(x, ((0, 0), (2, 2), (2, 2)))
        rgb[split] = (np.repeat(padded[..., None], 3, axis=3), y)
        done = root / split / ".written"
        if done.exists():
            continue
        for label in CLASSES:
            (root / split / label).mkdir(parents=True, exist_ok=True)
        for i, (image, label) in enumerate(zip(rgb[split][0], y)):
            Image.fromarray(image).save(root / split / CLASSES[label] / f"{i:05d}.png")
        done.touch()
    return rgb


class RgbCnn(nn.Module):
    """A VGG-style CNN for 32x32 RGB images: what a user trains first."""

    def __init__(self, classes=10):
        super().__init__()
        layers, channels = [], 3
        for width, pool in [(32, False), (32, True), (64, False), (64, True), (128, False), (128, True)]:
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def to_input(images):
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return (x - MEAN) / STD


def augment(x):
    padded = F.pad(x, (4, 4, 4, 4))
    out = torch.empty_like(x)
    for i in range(len(x)):
        top, left = np.random.randint(0, 9, 2)
        crop = padded[i, :, top:top + 32, left:left + 32]
        out[i] = crop.flip(2) if np.random.rand() < 0.5 else crop
    return out


def train(model, x, y, epochs, lr, loss_fn, transform=None, batch=128):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = epochs * math.ceil(len(x) / batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch):
            index = order[start:start + batch]
            xb = x[index] if transform is None else transform(x[index])
            optimizer.zero_grad()
            loss_fn(model(xb), y[index]).backward()
            optimizer.step()
            schedule.step()
    model.eval()


def predict(model, x, batch=1000):
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def images(out, epochs):
    rgb = write_folder(out / "data")
    x_train, y_train = to_input(rgb["train"][0]), torch.from_numpy(rgb["train"][1].astype(np.int64))
    x_test, y_test = to_input(rgb["test"][0]), torch.from_numpy(rgb["test"][1].astype(np.int64))
    model = RgbCnn()
    start = time.time()
    train(model, x_train, y_train, epochs, 0.1, F.cross_entropy, augment)
    accuracy = float((predict(model, x_test).argmax(1) == y_test).float().mean() * 100)
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), out / "model.onnx", input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13)
    return {"test_accuracy": accuracy, "train_seconds": time.time() - start}


def two_tones(count, rng):
    t = np.arange(256, dtype=np.float32) / 64
    low, high = rng.uniform(0.5, 3, count), rng.uniform(3, 12, count)
    signal = (np.sin(2 * np.pi * low[:, None] * t + rng.uniform(0, 6.3, (count, 1)))
              + rng.uniform(0.3, 1, (count, 1)) * np.sin(2 * np.pi * high[:, None] * t + rng.uniform(0, 6.3, (count, 1))))
    signal += rng.normal(0, 0.3, signal.shape)
    return signal[:, None, :].astype(np.float32), np.stack([low, high], axis=1).astype(np.float32)


class SignalCnn(nn.Module):
    def __init__(self):
        super().__init__()
        layers, channels = [], 1
        for width, stride in [(32, 1), (64, 2), (64, 1), (128, 2), (128, 1)]:
            layers += [nn.Conv1d(channels, width, 5, stride=stride, padding=2, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 2)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=2))


def arrays(out, epochs):
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    splits = {split: two_tones(count, rng) for split, count in {"train": 20000, "val": 2000, "test": 4000}.items()}
    for split, (x, y) in splits.items():
        np.save(data / f"x_{split}.npy", x)
        np.save(data / f"y_{split}.npy", y)
    model = SignalCnn()
    start = time.time()
    x, y = (torch.from_numpy(a) for a in splits["train"])
    train(model, x, y, epochs, 0.02, F.smooth_l1_loss)
    x_test, y_test = (torch.from_numpy(a) for a in splits["test"])
    mae = float((predict(model, x_test) - y_test).abs().mean())
    torch.onnx.export(model, torch.zeros(1, 1, 256), out / "model.onnx", input_names=["window"], output_names=["hz"],
                      dynamic_axes={"window": {0: "batch"}, "hz": {0: "batch"}}, opset_version=13)
    return {"test_mae": mae, "train_seconds": time.time() - start}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["images", "arrays"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--epochs", type=int)
    args = parser.parse_args()
    torch.manual_seed(1)
    np.random.seed(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.kind == "images":
        result = images(args.out, args.epochs or 6)
    else:
        result = arrays(args.out, args.epochs or 20)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
