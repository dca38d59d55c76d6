#!/usr/bin/python3
"""Writes the ONNX files the import tests read, as torch.onnx.export writes them.

Run with Debian's /usr/bin/python3 (python3-torch, python3-torchvision from scripts/setup.sh):

    /usr/bin/python3 scripts/make_onnx_fixtures.py OUTPUT_DIR

For each model it writes NAME.onnx, NAME.input.bin and NAME.output.bin (raw little-endian float32:
a seeded random input and PyTorch's output for it), and one manifest.json describing them all.
Weights are random (seeded), every model is in eval mode with batch 1; torchvision models use
reduced widths and 10 classes so that the files stay small. The build generates these into
build/fixtures/onnx; nothing here is committed.
"""
import json
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tv


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        split = lambda t: t.reshape(batch, tokens, self.heads, dim // self.heads).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        weights = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        mixed = (weights @ v).transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj(mixed)


def mlp(dim, hidden):
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class ViTBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), mlp(dim, 2 * dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """Patch 4 on 32x32 (64 tokens of width 32), two pre-norm blocks, mean-pooled tokens."""

    def __init__(self, dim=32, depth=2, heads=4, classes=10):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, kernel_size=4, stride=4)
        self.position = nn.Parameter(torch.randn(1, 64, dim) * 0.02)
        self.blocks = nn.Sequential(*[ViTBlock(dim, heads) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2) + self.position
        x = self.norm(self.blocks(x))
        return self.head(x.mean(dim=1))


class MixerBlock(nn.Module):
    def __init__(self, tokens, dim):
        super().__init__()
        self.norm1, self.token_mlp = nn.LayerNorm(dim), mlp(tokens, 2 * tokens)
        self.norm2, self.channel_mlp = nn.LayerNorm(dim), mlp(dim, 2 * dim)

    def forward(self, x):
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class TinyMixer(nn.Module):
    """MLP-Mixer, patch 4 on 32x32: token mixing and channel mixing MLPs."""

    def __init__(self, dim=32, depth=2, classes=10):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, kernel_size=4, stride=4)
        self.blocks = nn.Sequential(*[MixerBlock(64, dim) for _ in range(depth)])
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x):
        x = self.blocks(self.patch(x).flatten(2).transpose(1, 2))
        return self.head(self.norm(x).mean(dim=1))


class TemporalBlock(nn.Module):
    """Causal dilated Conv1d pair with a residual; causality by a left Pad or by padding + chomp."""

    def __init__(self, inputs, outputs, dilation, pad_left):
        super().__init__()
        self.context = 2 * dilation
        self.pad_left = pad_left
        padding = 0 if pad_left else self.context
        self.conv1 = nn.Conv1d(inputs, outputs, 3, dilation=dilation, padding=padding)
        self.conv2 = nn.Conv1d(outputs, outputs, 3, dilation=dilation, padding=padding)
        self.dropout = nn.Dropout(0.1)
        self.downsample = nn.Conv1d(inputs, outputs, 1) if inputs != outputs else nn.Identity()

    def causal(self, conv, x):
        if self.pad_left:
            return conv(F.pad(x, (self.context, 0)))
        return conv(x)[:, :, : -self.context]

    def forward(self, x):
        y = self.dropout(F.relu(self.causal(self.conv1, x)))
        y = self.dropout(F.relu(self.causal(self.conv2, y)))
        return F.relu(y + self.downsample(x))


class TinyTCN(nn.Module):
    """4 channels x 128 samples -> one regression output (the pulse-rate use case's shape)."""

    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(4)  # normalises the raw input: no conv before it to fold into
        self.blocks = nn.Sequential(
            TemporalBlock(4, 16, 1, pad_left=True),
            TemporalBlock(16, 16, 2, pad_left=False),
            nn.MaxPool1d(2),
            TemporalBlock(16, 24, 4, pad_left=True),
            nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False),
            TemporalBlock(24, 24, 8, pad_left=False),
        )
        self.head = nn.Linear(24, 1)

    def forward(self, x):
        return self.head(self.blocks(self.norm(x)).mean(dim=2))


class SmallVGG(nn.Module):
    """VGG-style stacks of 3x3 conv + BN + ReLU, max and ceil-mode average pooling, BN1d head."""

    def __init__(self, classes=10):
        super().__init__()

        def stage(inputs, outputs, convs):
            layers = []
            for index in range(convs):
                layers += [nn.Conv2d(inputs if index == 0 else outputs, outputs, 3, padding=1),
                           nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]
            return layers

        self.features = nn.Sequential(
            *stage(3, 16, 1), nn.MaxPool2d(2),
            *stage(16, 32, 1), nn.MaxPool2d(2),
            *stage(32, 48, 2), nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
            nn.ReLU6(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(48 * 5 * 5, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(64, classes),
        )

    def forward(self, x):
        return F.log_softmax(self.classifier(self.features(x)), dim=1)


class TinyUNet(nn.Module):
    """An image-to-image encoder-decoder as generators and segmenters export it: reflection and
    replication padding, instance norm, LeakyReLU / PReLU / ELU / SELU / Softplus / Tanh, a strided
    and a transposed convolution, bilinear and nearest upsampling."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, 8, 3), nn.InstanceNorm2d(8, affine=True),
                                  nn.LeakyReLU(0.2))
        self.down = nn.Sequential(nn.Conv2d(8, 16, 4, stride=2, padding=1), nn.InstanceNorm2d(16, affine=True),
                                  nn.PReLU(16))
        self.bottom = nn.Sequential(nn.ReplicationPad2d(1), nn.Conv2d(16, 16, 3), nn.ELU())
        self.up = nn.Sequential(nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1), nn.SELU())
        self.side = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.Softplus())
        self.head = nn.Conv2d(16, 4, 3, padding=1)

    def forward(self, x):
        skip = self.stem(x)                                  # 8 x 32 x 32
        down = self.down(skip)                               # 16 x 16 x 16
        up = self.up(self.bottom(down))                      # 8 x 32 x 32
        side = F.interpolate(self.side(down), scale_factor=2, mode="bilinear", align_corners=False)
        y = self.head(torch.cat([skip, up + side], dim=1))  # 4 x 32 x 32
        return torch.tanh(F.interpolate(y, scale_factor=2, mode="nearest"))


def with_random_normalisation(model):
    """Fresh normalisation layers scale by 1 and shift by 0 (and BN's statistics are 0 and 1),
    which would hide folding mistakes."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
        if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    return model


# name, constructor, input shape, opsets, source description (for the manifest and the README).
MODELS = [
    ("resnet18", lambda: tv.resnet18(num_classes=10), (1, 3, 64, 64), [11], "torchvision resnet18(num_classes=10)"),
    ("mobilenet_v2", lambda: tv.mobilenet_v2(width_mult=0.5, num_classes=10), (1, 3, 64, 64), [13],
     "torchvision mobilenet_v2(width_mult=0.5, num_classes=10)"),
    ("mobilenet_v3_small", lambda: tv.mobilenet_v3_small(width_mult=0.5, num_classes=10), (1, 3, 64, 64), [11, 17],
     "torchvision mobilenet_v3_small(width_mult=0.5, num_classes=10)"),
    ("shufflenet_v2", lambda: tv.shufflenet_v2_x0_5(num_classes=10), (1, 3, 64, 64), [11, 13],
     "torchvision shufflenet_v2_x0_5(num_classes=10)"),
    ("squeezenet1_1", lambda: tv.squeezenet1_1(num_classes=10), (1, 3, 64, 64), [13],
     "torchvision squeezenet1_1(num_classes=10)"),
    ("efficientnet_b0", lambda: tv.efficientnet_b0(num_classes=10), (1, 3, 64, 64), [13],
     "torchvision efficientnet_b0(num_classes=10)"),
    ("vit_tiny", TinyViT, (1, 3, 32, 32), [13, 17], "TinyViT in scripts/make_onnx_fixtures.py"),
    ("mixer_tiny", TinyMixer, (1, 3, 32, 32), [11, 17], "TinyMixer in scripts/make_onnx_fixtures.py"),
    ("tcn_tiny", TinyTCN, (1, 4, 128), [11, 17], "TinyTCN in scripts/make_onnx_fixtures.py"),
    ("vgg_small", SmallVGG, (1, 3, 32, 32), [13], "SmallVGG in scripts/make_onnx_fixtures.py"),
    ("unet_tiny", TinyUNet, (1, 3, 32, 32), [11, 13], "TinyUNet in scripts/make_onnx_fixtures.py"),
]


def write_floats(path, tensor):
    path.write_bytes(tensor.detach().contiguous().to(torch.float32).numpy().astype("<f4").tobytes())


def export(name, make_model, input_shape, opset, source, directory):
    torch.manual_seed(0)
    model = with_random_normalisation(make_model()).eval()
    example = torch.rand(input_shape)  # pixels in [0,1], as gos feeds models
    with torch.no_grad():
        output = model(example)
    stem = f"{name}_opset{opset}"
    torch.onnx.export(model, example, str(directory / f"{stem}.onnx"), opset_version=opset,
                      input_names=["input"], output_names=["output"], do_constant_folding=True)
    write_floats(directory / f"{stem}.input.bin", example)
    write_floats(directory / f"{stem}.output.bin", output)
    return {
        "name": stem, "model": name, "source": source, "opset": opset, "file": f"{stem}.onnx",
        "input": {"name": "input", "shape": list(input_shape), "file": f"{stem}.input.bin"},
        "output": {"name": "output", "shape": list(output.shape), "file": f"{stem}.output.bin"},
    }


def main(arguments):
    if len(arguments) != 1:
        sys.exit("usage: make_onnx_fixtures.py OUTPUT_DIR")
    directory = Path(arguments[0])
    directory.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore")  # the exporter's advice on dynamic shapes does not apply here
    entries = [export(name, make, shape, opset, source, directory)
               for name, make, shape, opsets, source in MODELS for opset in opsets]
    (directory / "manifest.json").write_text(json.dumps({"models": entries}, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
