"""Generator marks in metadata: XMP source type, PNG text chunks, EXIF software."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from provkit.detect.metadata import GENERATOR_SOFTWARE, match_generator, read_metadata
from provkit.provenance.core.errors import BadInput

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def xmp_packet(source_type: str, *, as_element: bool = False, extra: str = "") -> bytes:
    ns = (
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
    )
    if as_element:
        desc = (
            f'<rdf:Description rdf:about="" {ns}><Iptc4xmpExt:DigitalSourceType>'
            f"{IPTC}{source_type}</Iptc4xmpExt:DigitalSourceType>{extra}</rdf:Description>"
        )
    else:
        desc = (
            f'<rdf:Description rdf:about="" {ns} '
            f'Iptc4xmpExt:DigitalSourceType="{IPTC}{source_type}">{extra}</rdf:Description>'
        )
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'{desc}</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8))


@pytest.mark.parametrize("fmt", ["jpg", "webp", "png"])
@pytest.mark.parametrize("as_element", [False, True])
def test_xmp_digital_source_type_is_read_from_jpeg_webp_and_png(tmp_path, image, fmt, as_element):
    packet = xmp_packet("trainedAlgorithmicMedia", as_element=as_element)
    path = tmp_path / f"x.{fmt}"
    if fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", packet.decode(), zip=True)  # compressed iTXt
        image.save(path, pnginfo=info)
    else:
        image.save(path, xmp=packet)
    meta = read_metadata(path)
    assert meta.xmp and meta.digital_source_type == "trainedAlgorithmicMedia"


def test_xmp_ai_system_and_creator_tool_name_the_generator(tmp_path, image):
    extra = "<xmp:CreatorTool>Midjourney v6</xmp:CreatorTool>"
    path = tmp_path / "mj.jpg"
    image.save(path, xmp=xmp_packet("compositeWithTrainedAlgorithmicMedia", extra=extra))
    meta = read_metadata(path)
    assert meta.digital_source_type == "compositeWithTrainedAlgorithmicMedia"
    assert (meta.generator, meta.generator_source) == ("Midjourney", "xmp:CreatorTool")


def test_automatic1111_parameters_chunk_is_recognised(tmp_path, image):
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a lighthouse at dusk\nNegative prompt: blurry\n"
        "Steps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 42, Model: sd_xl",
    )
    path = tmp_path / "a1111.png"
    image.save(path, pnginfo=info)
    meta = read_metadata(path)
    assert (meta.generator, meta.generator_source) == ("AUTOMATIC1111", "png:parameters")
    assert meta.generator_detail == "a lighthouse at dusk"


@pytest.mark.parametrize(
    "key, value",
    [
        (
            "prompt",
            json.dumps(
                {
                    "3": {"class_type": "KSampler", "inputs": {"seed": 1}},
                    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {}},
                }
            ),
        ),
        ("workflow", json.dumps({"nodes": [{"id": 1, "type": "KSampler"}], "links": []})),
    ],
)
def test_comfyui_prompt_and_workflow_chunks_are_recognised(tmp_path, image, key, value):
    info = PngImagePlugin.PngInfo()
    info.add_text(key, value, zip=key == "workflow")  # zTXt as well as tEXt
    path = tmp_path / "comfy.png"
    image.save(path, pnginfo=info)
    meta = read_metadata(path)
    assert (meta.generator, meta.generator_source) == ("ComfyUI", f"png:{key}")


def test_a_parameters_chunk_without_generator_layout_is_not_claimed(tmp_path, image):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "exposure=1/250 iso=200")
    path = tmp_path / "p.png"
    image.save(path, pnginfo=info)
    assert read_metadata(path).generator is None


@pytest.mark.parametrize(
    "software, name",
    [("NovelAI", "NovelAI"), ("Adobe Firefly (Beta)", "Adobe Firefly"), ("ComfyUI", "ComfyUI")],
)
def test_exif_software_of_known_generators_is_recognised(tmp_path, image, software, name):
    exif = Image.Exif()
    exif[0x0131] = software
    path = tmp_path / "e.jpg"
    image.save(path, exif=exif)
    meta = read_metadata(path)
    assert (meta.generator, meta.generator_source) == (name, "exif:Software")


def test_automatic1111_parameters_in_jpeg_exif_user_comment(tmp_path, image):
    exif = Image.Exif()
    text = "portrait of a fox\nSteps: 25, Sampler: Euler a, CFG scale: 6, Seed: 7"
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + text.encode("utf-16-be")
    path = tmp_path / "a.jpg"
    image.save(path, exif=exif.tobytes())
    meta = read_metadata(path)
    assert (meta.generator, meta.generator_source) == ("AUTOMATIC1111", "exif:UserComment")


def test_camera_exif_is_read_but_names_no_generator(tmp_path, image):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0131] = "Canon", "EOS R5", "Adobe Photoshop 25.0"
    path = tmp_path / "cam.jpg"
    image.save(path, exif=exif)
    meta = read_metadata(path)
    assert meta.camera == "Canon EOS R5" and meta.generator is None
    assert meta.software == "Adobe Photoshop 25.0"


def test_plain_files_carry_nothing(tmp_path, image):
    for fmt in ("jpg", "png", "webp", "gif", "tif"):
        path = tmp_path / f"plain.{fmt}"
        image.save(path)
        meta = read_metadata(path)
        assert meta.generator is None and meta.digital_source_type is None, fmt


def test_unreadable_files_raise_bad_input_naming_them(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(BadInput, match="empty.png"):
        read_metadata(empty)
    with pytest.raises(BadInput, match="no such file"):
        read_metadata(tmp_path / "missing.jpg")


def test_generator_list_matches_case_insensitively():
    assert match_generator("stable DIFFUSION web ui") == "Stable Diffusion"
    assert match_generator("GIMP 2.10") is None
    assert all(k == k.lower() for k in GENERATOR_SOFTWARE)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(max_size=400), kind=st.sampled_from(["png", "jpg", "webp"]))
def test_damaged_metadata_never_raises_anything_but_a_result(tmp_path_factory, body, kind):
    heads = {
        "png": b"\x89PNG\r\n\x1a\n",
        "jpg": b"\xff\xd8\xff\xe1",
        "webp": b"RIFF\x00\x00\x00\x00WEBP",
    }
    path = tmp_path_factory.mktemp("fuzz") / f"f.{kind}"
    path.write_bytes(heads[kind] + body)
    read_metadata(path)  # returns a Metadata for any bytes after a valid signature


def test_oversized_compressed_png_text_chunk_is_skipped_and_reported(tmp_path, image):
    bomb = "A" * (8 << 20)  # 8 MB of text compresses to a few KB
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", bomb, zip=True)
    info.add_itxt("notes", bomb, zip=True)
    info.add_text("Software", "NovelAI", zip=True)
    path = tmp_path / "bomb.png"
    image.save(path, pnginfo=info)
    assert path.stat().st_size < 200_000
    meta = read_metadata(path)
    assert "parameters" not in meta.text_keys and "notes" not in meta.text_keys
    assert any("zTXt" in e and "'parameters'" in e for e in meta.errors)
    assert any("iTXt" in e and "'notes'" in e for e in meta.errors)
    assert meta.generator == "NovelAI"  # small compressed chunks are still read


@pytest.mark.parametrize(
    "software", ["Imagenomic Portraiture 3", "Geminiscope 2.1", "Fireflyer Studio", "PhotoSDXLr"]
)
def test_generator_name_inside_another_word_is_not_a_generator(tmp_path, image, software):
    exif = Image.Exif()
    exif[0x0131] = software
    path = tmp_path / "edit.jpg"
    image.save(path, exif=exif)
    meta = read_metadata(path)
    assert meta.software == software and meta.generator is None


def test_generator_named_as_a_whole_word_still_matches():
    assert match_generator("Google Imagen 3") == "Google Imagen"
    assert match_generator("Adobe Firefly (Image 3)") == "Adobe Firefly"
    assert match_generator("made with DALL·E") == "DALL-E"


@pytest.mark.parametrize("key", ["Description", "Comment"])
def test_captions_that_mention_a_generator_name_are_not_a_generator_mark(tmp_path, image, key):
    info = PngImagePlugin.PngInfo()
    info.add_text(key, "Photo of the Gemini spacecraft, made by Midjourney Street Studio")
    path = tmp_path / "caption.png"
    image.save(path, pnginfo=info)
    assert read_metadata(path).generator is None
    jpg = tmp_path / "caption.jpg"
    image.save(jpg, comment=b"Photo of the Gemini spacecraft")
    assert read_metadata(jpg).generator is None
