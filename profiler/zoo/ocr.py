"""The ``ocr`` family: a real 3-stage OCR pipeline from the pretrained ONNX models shipped inside
rapidocr-onnxruntime (PP-OCRv4 text detection -> PP-OCR angle classifier -> PP-OCRv4 recogniser).

Accuracy is measured on text rendered with Pillow's bundled font, so the ground truth is known and
nothing is downloaded: document images (640x480, several lines of random words) for the detector,
and single-line crops for the angle classifier (half of them turned 180 degrees) and the
recogniser. Metrics, each the accuracy of the stage with the other stages at full precision:

- ``zoo:ocr/det``: character accuracy of the whole pipeline on the documents with this detector at
  its input resolution (the variant's input shape), spaces ignored;
- ``zoo:ocr/cls``: orientation accuracy on the line crops;
- ``zoo:ocr/rec``: character accuracy on the line crops (spaces ignored).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from profiler.accuracy import EvalContext, Evaluator, character_accuracy
from profiler.errors import ManifestError, VariantError

log = logging.getLogger(__name__)

MEMBERS = {
    "det": "ch_PP-OCRv4_det_infer.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "rec": "ch_PP-OCRv4_rec_infer.onnx",
}
DOCUMENT_SIZE = (640, 480)  # width, height
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


def _package_dir() -> Path:
    try:
        import rapidocr_onnxruntime
    except ImportError:
        raise VariantError("the ocr zoo needs the models inside rapidocr-onnxruntime; "
                           "`pip install rapidocr-onnxruntime` (the 'profile' extra).") from None
    return Path(rapidocr_onnxruntime.__file__).parent


def build(name: str, cache_dir: Path) -> Path:
    """The shipped ONNX file of ``name`` (det, cls or rec); nothing is built or downloaded."""
    if name not in MEMBERS:
        raise ManifestError(f"zoo 'ocr' has no member '{name}'; members: {sorted(MEMBERS)}.")
    return _package_dir() / "models" / MEMBERS[name]


@dataclass(frozen=True)
class Document:
    image_bgr: np.ndarray
    lines: tuple[str, ...]


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _words(rng: np.random.Generator, count: int) -> str:
    return " ".join("".join(rng.choice(list(_ALPHABET), size=int(rng.integers(3, 8)))) for _ in range(count))


@lru_cache(maxsize=4)
def documents(count: int = 12, seed: int = 7) -> tuple[Document, ...]:
    """Rendered document images with known text (deterministic)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    docs = []
    width, height = DOCUMENT_SIZE
    for _ in range(count):
        image = Image.new("RGB", DOCUMENT_SIZE, "white")
        draw = ImageDraw.Draw(image)
        lines = []
        y = 30
        while y < height - 60:
            text = _words(rng, int(rng.integers(2, 5)))
            size = int(rng.integers(13, 22))
            draw.text((int(rng.integers(20, 60)), y), text, fill="black", font=_font(size))
            lines.append(text)
            y += size + int(rng.integers(14, 30))
        docs.append(Document(np.asarray(image)[:, :, ::-1].copy(), tuple(lines)))
    return tuple(docs)


@lru_cache(maxsize=4)
def line_crops(count: int = 48, seed: int = 11) -> tuple[tuple[np.ndarray, ...], tuple[str, ...]]:
    """Single-line images (BGR, tight with a small margin) and their text."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    crops, texts = [], []
    for _ in range(count):
        text = _words(rng, int(rng.integers(1, 4)))
        font = _font(int(rng.integers(24, 36)))
        left, top, right, bottom = font.getbbox(text)
        image = Image.new("RGB", (right - left + 16, bottom - top + 12), "white")
        ImageDraw.Draw(image).text((8 - left, 6 - top), text, fill="black", font=font)
        crops.append(np.asarray(image)[:, :, ::-1].copy())
        texts.append(text)
    return tuple(crops), tuple(texts)


def _squash(text: str) -> str:
    return "".join(text.split())


def _engine(threads: int, **paths: Path):
    from rapidocr_onnxruntime import RapidOCR

    kwargs = {f"{stage}_model_path": str(path) for stage, path in paths.items()}
    return RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1, **kwargs)


def _fixed_preprocess(height: int, width: int):
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    class FixedSize(DetPreProcess):
        """The detector's input at exactly the variant's resolution (rapidocr picks sizes itself)."""

        def resize(self, img: np.ndarray) -> np.ndarray:
            import cv2

            return cv2.resize(img, (width, height))

    return FixedSize()


def evaluate_det(ctx: EvalContext) -> float:
    if ctx.path is None or len(ctx.input.shape) != 3:
        raise VariantError(f"variant '{ctx.variant.name}': the OCR detector evaluator needs an ONNX file "
                           "and an input shape [3, H, W].")
    _, height, width = ctx.input.shape
    engine = _engine(ctx.threads, det=ctx.path)
    engine.text_det.get_preprocess = lambda max_wh: _fixed_preprocess(height, width)
    docs = documents()[: ctx.max_items]
    predicted = []
    for doc in docs:
        result, _ = engine(doc.image_bgr)
        predicted.append(_squash("".join(r[1] for r in result or [])))
    return character_accuracy(predicted, [_squash("".join(d.lines)) for d in docs])


def evaluate_cls(ctx: EvalContext) -> float:
    if ctx.path is None:
        raise VariantError(f"variant '{ctx.variant.name}': the angle classifier evaluator needs an ONNX file.")
    engine = _engine(ctx.threads, cls=ctx.path)
    crops, _ = line_crops()
    crops = crops[: ctx.max_items]
    turned = [c if i % 2 == 0 else np.ascontiguousarray(c[::-1, ::-1]) for i, c in enumerate(crops)]
    _, results, _ = engine.text_cls(list(turned))
    labels = ["0" if i % 2 == 0 else "180" for i in range(len(turned))]
    return float(np.mean([r[0] == label for r, label in zip(results, labels)]))


def evaluate_rec(ctx: EvalContext) -> float:
    if ctx.path is None:
        raise VariantError(f"variant '{ctx.variant.name}': the recogniser evaluator needs an ONNX file.")
    engine = _engine(ctx.threads, rec=ctx.path)
    crops, texts = line_crops()
    crops, texts = crops[: ctx.max_items], texts[: ctx.max_items]
    results, _ = engine.text_rec(list(crops))
    return character_accuracy([_squash(r[0]) for r in results], [_squash(t) for t in texts])


_EVALUATORS = {"det": evaluate_det, "cls": evaluate_cls, "rec": evaluate_rec}


def evaluator(name: str) -> Evaluator:
    if name not in _EVALUATORS:
        raise ManifestError(f"zoo:ocr/{name}: unknown evaluation set; use one of "
                            f"{['zoo:ocr/' + n for n in _EVALUATORS]}.")
    return _EVALUATORS[name]


def calibration(name: str) -> np.ndarray:
    """Calibration inputs for static int8, from documents/lines NOT used for evaluation."""
    import cv2

    if name == "det":
        width, height = DOCUMENT_SIZE
        images = [d.image_bgr for d in documents(count=8, seed=1001)]
        return np.stack([_normalise(cv2.resize(img, (width, height))) for img in images])
    if name in ("cls", "rec"):
        crops, _ = line_crops(count=32, seed=2002)
        target = (192, 48) if name == "cls" else (320, 48)
        return np.stack([_normalise(cv2.resize(c, target)) for c in crops])
    raise ManifestError(f"zoo:ocr/{name}: unknown calibration set; use zoo:ocr/det, zoo:ocr/cls or zoo:ocr/rec.")


def _normalise(img_bgr: np.ndarray) -> np.ndarray:
    """PP-OCR's input normalisation: scale to [-1, 1], channels first."""
    return ((img_bgr.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
