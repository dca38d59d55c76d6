#!/usr/bin/env bash
# `make demo`: the main job on the embedded default. Until `gos adapt` exists (issue 6), the demo
# shows the heart of gos: operators written as mathematical instructions, canonicalised and costed,
# the replacements the rewrite rules derive for a layer of the committed ResNet-20 baseline, and
# what they cost on the mobile backend.
set -euo pipefail
gos=${1:-build/gos}

show() {
  echo
  echo "== $1"
  "$gos" expr "$2" --extents "$3"
}

show "3x3 stride-2 convolution, padding 1 (ResNet downsampling)" \
  "Y[n,k,h,w] = sum{c,r,s} X[n,c,2*h+r-1,2*w+s-1] * W[k,c,r,s]" \
  "n<1, k<64, c<32, h<14, w<14, r<3, s<3"

show "The same layer as depthwise-separable: a depthwise 3x3, then a 1x1 that mixes channels" \
  "T[n,c,h,w] = sum{r,s} X[n,c,2*h+r-1,2*w+s-1] * D[c,r,s]; Y[n,k,h,w] = sum{c} T[n,c,h,w] * P[k,c]" \
  "n<1, k<64, c<32, h<14, w<14, r<3, s<3, in X[1,32,28,28]"

show "Grouped 3x3 convolution, 4 groups: output channel 16*g+k reads input channels 8*g+c" \
  "Y[n,16*g+k,h,w] = sum{c,r,s} X[n,8*g+c,h+r-1,w+s-1] * W[16*g+k,c,r,s]" \
  "n<1, g<4, k<16, c<8, h<14, w<14, r<3, s<3, in X[1,32,14,14]"

show "Linear layer with bias and GELU" \
  "Y[n,k] = gelu(sum{c} X[n,c] * W[k,c] + B[k])" \
  "n<1, k<256, c<512"

echo
echo "== A whole model: the zoo's ResNet-20 (Fashion-MNIST input), every operator as instructions"
"$gos" inspect resnet20 | sed -n '1,12p;$p'

echo
echo "== Replacements for the last 3x3 conv of the trained ResNet-20 (rewrite rules, depth 1),"
echo "   with their error on 32 validation images before any training and their measured latency"
"$gos" candidates models/resnet20.onnx --op stage3.block3.conv2 --data fashion-mnist --depth 1 --max 12 \
  --backend mobile | grep -v '^      [A-Z]'

echo
echo "== The whole baseline on the mobile backend (TorchScript optimised for mobile, 1 thread)"
"$gos" bench models/resnet20.onnx --backend mobile
