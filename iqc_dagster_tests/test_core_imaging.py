import numpy as np
import pytest
from PIL import Image

from iqc_dagster.core import imaging
from iqc_dagster_tests.conftest import real_photo, save_jpeg


def test_decode_applies_exif_orientation(tmp_path):
    img = real_photo("astronaut")[:, :400]  # 512 x 400, not square
    sideways = np.rot90(img, k=1).copy()  # stored rotated 90° counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    p = save_jpeg(sideways, tmp_path / "r.jpg", quality=95, exif=exif.tobytes())
    d = imaging.decode(p)
    assert d.rgb.shape[:2] == img.shape[:2]
    assert (d.source_width, d.source_height) == (img.shape[1], img.shape[0])
    # upright pixels match the original (up to JPEG error), and not the stored orientation
    diff = np.abs(d.rgb.astype(int) - img.astype(int)).mean()
    assert diff < 6
    info = imaging.probe(p)
    assert info.orientation == 6 and (info.width, info.height) == sideways.shape[1::-1]


def test_decode_large_jpeg_uses_dct_scaling_and_never_enlarges(tmp_path):
    big = np.tile(real_photo("coffee"), (6, 6, 1))[:2400, :3600]
    p = save_jpeg(big, tmp_path / "big.jpg")
    d = imaging.decode(p)
    # 1/4 DCT scale (900 px >= FINE_MIN_SIDE), and the view is that image as it is: no upsampling to 1024
    assert d.reduction == 4 and d.fine.shape[:2] == (600, 900)
    assert d.rgb.shape[:2] == (600, 900)
    assert (d.source_width, d.source_height) == (3600, 2400)
    assert d.rgb.dtype == np.uint8 and d.rgb.shape[2] == 3


def test_hash_depends_on_content_only(tmp_path):
    a = save_jpeg(real_photo("coffee"), tmp_path / "a.jpg")
    b = tmp_path / "b.jpg"
    b.write_bytes(a.read_bytes())
    c = save_jpeg(real_photo("chelsea"), tmp_path / "c.jpg")
    assert imaging.hash_file(a) == imaging.hash_file(b) != imaging.hash_file(c)


def test_probe_reads_capture_time(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2021:07:04 18:30:05"
    p = save_jpeg(real_photo("rocket"), tmp_path / "x.jpg", exif=exif.tobytes())
    info = imaging.probe(p)
    assert info.captured_at is not None and info.captured_at.isoformat() == "2021-07-04T18:30:05"
    assert info.format == "JPEG"


@pytest.mark.parametrize("content", [b"", b"hello, not a photo", None])
def test_unreadable_files_raise_with_reason(tmp_path, content):
    p = tmp_path / "bad.jpg"
    if content is None:  # truncated JPEG: header fine, data cut
        good = save_jpeg(real_photo("coffee"), tmp_path / "good.jpg").read_bytes()
        content = good[: len(good) // 3]
    p.write_bytes(content)
    with pytest.raises(imaging.UnreadableImage) as ei:
        imaging.decode(p)
    assert str(ei.value)


def test_sixteen_bit_and_palette_images_decode_sensibly(tmp_path):
    grad = (np.linspace(0, 65535, 256)[None, :] * np.ones((64, 1))).astype(np.uint16)
    p16 = tmp_path / "g16.png"
    Image.fromarray(grad).save(p16)
    d = imaging.decode(p16)
    row = d.rgb[0, :, 0].astype(int)
    assert row[0] < 5 and row[-1] > 250 and np.all(np.diff(row) >= 0)  # scaled, not clipped to white

    pal = Image.new("P", (32, 32))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (0, 0, 16, 32))
    pal.info["transparency"] = 0
    pp = tmp_path / "pal.png"
    pal.save(pp, transparency=0)
    d = imaging.decode(pp)
    assert d.rgb.shape == (32, 32, 3)
    assert tuple(d.rgb[0, 0]) == (0, 0, 255) and tuple(d.rgb[0, 31]) == (128, 128, 128)


def test_is_image_name():
    assert imaging.is_image_name("a.JPG") and imaging.is_image_name("b.heic")
    assert not imaging.is_image_name(".DS_Store") and not imaging.is_image_name("notes.txt")
    assert not imaging.is_image_name("._a.jpg")
