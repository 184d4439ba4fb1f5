#!/usr/bin/env python3
"""Renders a labelled OCR test set: lines of KJV text as 48-pixel-high images.

    ocr_render.py OUT_DIR [--lines N] [--text FILE]

The text is `bible -f gen1:1-gen3:24` (Debian's bible-kjv; verse references
dropped), or FILE (one passage a line). Each passage is wrapped at word
boundaries into lines of at most MAX_CHARS characters; the first N lines
(default 200) are drawn black on white in DejaVu Sans (fonts-dejavu-core) at
FONT_PX pixels, left-aligned with MARGIN pixels each side, on an image exactly
HEIGHT = 48 pixels high (PaddleOCR's recognizer input height, so its resize is
the identity). Pillow's BASIC layout engine (FreeType only, no Raqm) keeps the
pixels the same wherever Debian 12's python3-pil runs.

Writes OUT_DIR/NNNN.pgm (binary 8-bit greyscale, P5) and OUT_DIR/manifest.json:
{"lines": [{"image": "NNNN.pgm", "text": ...}, ...], "font": ..., ...}.
"""

import argparse
import json
import os
import re
import subprocess
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
HEIGHT = 48
FONT_PX = 32
MARGIN = 4
MAX_CHARS = 40


def passages(text_file):
    if text_file:
        with open(text_file, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    out = subprocess.run(["bible", "-f", "gen1:1-gen3:24"], check=True,
                         capture_output=True, text=True).stdout
    # "Ge1:1 In the beginning ..." -> "In the beginning ..."
    return [re.sub(r"^\S+\s+", "", line).strip() for line in out.splitlines() if line.strip()]


def wrap(passage, width):
    lines, line = [], ""
    for word in passage.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines


def render(text, font):
    # Place the text by the font's ascent/descent, not the line's own ink, so
    # that every line sits on the same baseline.
    ascent, descent = font.getmetrics()
    width = int(font.getlength(text)) + 2 * MARGIN
    image = Image.new("L", (width, HEIGHT), 255)
    top = (HEIGHT - (ascent + descent)) // 2
    ImageDraw.Draw(image).text((MARGIN, top), text, font=font, fill=0)
    return image


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--text", help="one passage a line (default: the KJV, Genesis 1-3)")
    args = parser.parse_args()

    lines = [l for p in passages(args.text) for l in wrap(p, MAX_CHARS)]
    if len(lines) < args.lines:
        sys.exit(f"ocr_render: only {len(lines)} lines of text, {args.lines} asked for")
    lines = lines[:args.lines]

    font = ImageFont.truetype(FONT, FONT_PX, layout_engine=ImageFont.Layout.BASIC)
    os.makedirs(args.out_dir, exist_ok=True)
    entries = []
    for i, text in enumerate(lines):
        name = f"{i:04d}.pgm"
        render(text, font).save(os.path.join(args.out_dir, name))
        entries.append({"image": name, "text": text})
    manifest = {"font": os.path.basename(FONT), "font_px": FONT_PX, "height": HEIGHT,
                "margin": MARGIN, "max_chars": MAX_CHARS, "lines": entries}
    with open(os.path.join(args.out_dir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"ocr_render: {len(entries)} lines, {sum(len(e['text']) for e in entries)} characters "
          f"-> {args.out_dir}")


if __name__ == "__main__":
    main()
