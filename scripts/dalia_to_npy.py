#!/usr/bin/env python3
"""Convert PPG-DaLiA's per-subject pickles into the .npy layout gos reads (docs/ppg.md).

usage: dalia_to_npy.py [-h] [--subjects 1,2,...] PPG_FieldStudy OUT

Reads PPG_FieldStudy/S<k>/S<k>.pkl (k = 1..15, as the data set unpacks) and writes, per subject,

    OUT/S<k>/ppg.npy       float32 [N]    signal['wrist']['BVP'], 64 Hz
    OUT/S<k>/acc.npy       float32 [M,3]  signal['wrist']['ACC'], 32 Hz, in g
    OUT/S<k>/hr.npy        float32 [W]    label: ECG heart rate in BPM, 8 s windows shifted by 2 s
    OUT/S<k>/activity.npy  int32   [W]    activity (4 Hz) per window: its most frequent id

then `gos train --data ppg:OUT` (or eval, adapt) reads OUT. The accelerometer is written in g: the
Empatica E4 counts 1/64 g, so when the magnitude's median is near 64 rather than 1 the values are
divided by 64. Needs Python 3 and numpy only (Debian: python3-numpy).
"""
import argparse
import os
import pickle
import sys

import numpy as np

SUBJECTS = range(1, 16)
ACTIVITY_HZ = 4
WINDOW_SECONDS = 8
SHIFT_SECONDS = 2
E4_COUNTS_PER_G = 64.0


class ConversionError(Exception):
    """A problem with the input, said in one line that names the file."""


def load_pickle(path):
    try:
        with open(path, "rb") as file:
            # The pickles were written by Python 2: latin1 reads their byte strings and arrays.
            return pickle.load(file, encoding="latin1")
    except OSError as error:
        raise ConversionError(f"{path}: cannot read ({error.strerror})")
    except Exception as error:  # a damaged pickle can fail in many ways; all mean the same here
        raise ConversionError(f"{path}: not a readable pickle ({type(error).__name__}: {error})")


def field(data, path, keys):
    value = data
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise ConversionError(f"{path}: no {'/'.join(keys)} (is this a PPG-DaLiA S<k>.pkl?)")
        value = value[key]
    return np.asarray(value)


def acceleration_in_g(acc, path):
    if acc.ndim != 2 or acc.shape[1] != 3:
        raise ConversionError(f"{path}: signal/wrist/ACC has shape {acc.shape}; expected [M,3]")
    magnitude = float(np.median(np.linalg.norm(acc, axis=1))) if len(acc) else 1.0
    if 0.5 <= magnitude <= 2.0:
        return acc
    if 0.5 * E4_COUNTS_PER_G <= magnitude <= 2.0 * E4_COUNTS_PER_G:
        return acc / E4_COUNTS_PER_G
    raise ConversionError(f"{path}: signal/wrist/ACC has a median magnitude of {magnitude:.3g}, "
                          "neither about 1 (g) nor about 64 (1/64 g)")


def activity_per_window(activity, windows):
    """The most frequent activity id over each window's 4 Hz samples (the lower id on a tie)."""
    per_window = np.zeros(windows, dtype=np.int32)
    samples = WINDOW_SECONDS * ACTIVITY_HZ
    for i in range(windows):
        start = i * SHIFT_SECONDS * ACTIVITY_HZ
        covered = activity[start:start + samples]
        if len(covered):
            per_window[i] = int(np.bincount(covered).argmax())
    return per_window


def convert_subject(source, out, subject):
    path = os.path.join(source, f"S{subject}", f"S{subject}.pkl")
    data = load_pickle(path)
    ppg = field(data, path, ["signal", "wrist", "BVP"]).astype(np.float64).reshape(-1)
    acc = acceleration_in_g(field(data, path, ["signal", "wrist", "ACC"]).astype(np.float64), path)
    hr = field(data, path, ["label"]).astype(np.float64).reshape(-1)
    activity = field(data, path, ["activity"]).reshape(-1)
    if len(activity) and (np.any(activity < 0) or np.any(activity != np.round(activity))):
        raise ConversionError(f"{path}: activity holds values that are not ids (non-negative integers)")

    folder = os.path.join(out, f"S{subject}")
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, "ppg.npy"), ppg.astype("<f4"))
    np.save(os.path.join(folder, "acc.npy"), np.ascontiguousarray(acc.astype("<f4")))
    np.save(os.path.join(folder, "hr.npy"), hr.astype("<f4"))
    np.save(os.path.join(folder, "activity.npy"), activity_per_window(activity.astype(np.int64), len(hr)).astype("<i4"))
    return len(hr)


def parse_subjects(text):
    try:
        subjects = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of subject numbers")
    for subject in subjects:
        if subject not in SUBJECTS:
            raise argparse.ArgumentTypeError(f"subject {subject} is not one of PPG-DaLiA's 1..15")
    return subjects


def main(argv):
    parser = argparse.ArgumentParser(
        description="Convert PPG-DaLiA's S<k>/S<k>.pkl files into per-subject .npy arrays for gos (docs/ppg.md).")
    parser.add_argument("source", metavar="PPG_FieldStudy", help="the unpacked data set's folder, holding S1..S15")
    parser.add_argument("out", metavar="OUT", help="the folder to write S<k>/*.npy into (created if needed)")
    parser.add_argument("--subjects", type=parse_subjects, metavar="1,2,...",
                        help="comma-separated subject numbers (default: every S<k>/S<k>.pkl found)")
    args = parser.parse_args(argv)

    if not os.path.isdir(args.source):
        print(f"dalia_to_npy: {args.source} is not a folder: pass the unpacked PPG_FieldStudy folder",
              file=sys.stderr)
        return 2
    subjects = args.subjects
    if subjects is None:
        subjects = [k for k in SUBJECTS if os.path.isfile(os.path.join(args.source, f"S{k}", f"S{k}.pkl"))]
        if not subjects:
            print(f"dalia_to_npy: no S<k>/S<k>.pkl in {args.source}: pass the unpacked PPG_FieldStudy folder",
                  file=sys.stderr)
            return 2
    try:
        for subject in subjects:
            windows = convert_subject(args.source, args.out, subject)
            print(f"S{subject}: {windows} windows")
    except ConversionError as error:
        print(f"dalia_to_npy: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"dalia_to_npy: cannot write into {args.out} ({error.strerror})", file=sys.stderr)
        return 2
    print(f"wrote {len(subjects)} subjects to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
