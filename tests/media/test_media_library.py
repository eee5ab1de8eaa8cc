"""The media library: uploads are re-encoded without metadata (GPS included), served with long
cache headers, listed and reused; personal only when an operator says whom a picture shows."""

import io

import pytest
from django.urls import reverse
from PIL import Image, ImageSequence

from tests.operators import make_operator
from tidings.audience.actions import do_create_contact
from tidings.audience.sources import source
from tidings.media.models import MediaImage

GPS_IFD = 0x8825


def gps_jpeg(width: int = 64, height: int = 32, orientation: int = 1) -> bytes:
    """A real JPEG whose EXIF says where and with what it was taken (51°30'N 0°7'W)."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, width // 2, height))  # left half blue: shows rotation
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12 Pro"  # Model
    exif[0x0132] = "2026:05:01 09:30:00"  # DateTime
    exif[0x0112] = orientation
    exif[GPS_IFD] = {
        1: "N",
        2: (51.0, 30.0, 26.0),
        3: "W",
        4: (0.0, 7.0, 39.0),
    }
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"taken at home")
    return out.getvalue()


def upload(client, data: bytes, filename: str = "holiday_photo.jpg", **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        reverse("media:index"),
        {"file": SimpleUploadedFile(filename, data, content_type="image/jpeg"), **fields},
    )


@pytest.fixture
def editor_client(client, db):
    client.force_login(make_operator("ed", "editor"))
    return client


def test_the_test_photo_really_carries_gps_and_camera_details():
    exif = Image.open(io.BytesIO(gps_jpeg())).getexif()
    assert exif.get_ifd(GPS_IFD)[1] == "N"
    assert exif[0x0110] == "Phone 12 Pro"


def test_an_uploaded_photo_loses_its_gps_position_camera_and_comment(editor_client):
    raw = gps_jpeg()
    response = upload(editor_client, raw, alt="Our stand at the fair")
    image = MediaImage.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("media:image", args=[image.pk])
    stored = bytes(image.data)
    reopened = Image.open(io.BytesIO(stored))
    assert reopened.format == "JPEG"
    assert not reopened.getexif()
    assert reopened.getexif().get_ifd(GPS_IFD) == {}
    assert b"Exif" not in stored
    assert b"Phone 12 Pro" not in stored and b"PhoneMaker" not in stored
    assert b"taken at home" not in stored
    assert "comment" not in reopened.info and "exif" not in reopened.info
    assert (image.name, image.alt) == ("holiday photo", "Our stand at the fair")
    assert (image.width, image.height) == (64, 32)


def test_a_sideways_phone_photo_is_turned_upright_before_its_exif_goes(editor_client):
    upload(editor_client, gps_jpeg(64, 32, orientation=6))  # "rotate 90° clockwise to view"
    image = MediaImage.objects.get()
    assert (image.width, image.height) == (32, 64)


def test_a_wide_picture_is_scaled_to_the_configured_width(editor_client, settings):
    settings.TIDINGS_MEDIA_MAX_WIDTH = 40
    upload(editor_client, gps_jpeg(100, 50))
    assert MediaImage.objects.values_list("width", "height").get() == (40, 20)


def png(mode="RGBA", size=(20, 10)) -> bytes:
    out = io.BytesIO()
    image = Image.new(mode, size, (0, 128, 0, 128) if mode == "RGBA" else 0)
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Ada Lovelace")
    image.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def test_png_text_chunks_are_dropped_and_transparency_kept(editor_client):
    upload(editor_client, png(), filename="logo.png")
    image = MediaImage.objects.get()
    stored = Image.open(io.BytesIO(bytes(image.data)))
    assert (stored.format, image.content_type) == ("PNG", "image/png")
    assert b"Ada Lovelace" not in bytes(image.data)
    assert stored.mode == "RGBA"


def test_webp_becomes_a_format_every_mail_program_shows(editor_client):
    out = io.BytesIO()
    Image.new("RGB", (20, 10), (1, 2, 3)).save(out, "WEBP")
    upload(editor_client, out.getvalue(), filename="x.webp")
    assert MediaImage.objects.get().content_type == "image/jpeg"


def test_an_animated_gif_stays_animated(editor_client):
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    upload(editor_client, out.getvalue(), filename="spinner.gif")
    stored = Image.open(io.BytesIO(bytes(MediaImage.objects.get().data)))
    assert len(list(ImageSequence.Iterator(stored))) == 3


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"%PDF-1.4 not a picture", "invoice.jpg", "not a picture tidings can read"),
        (gps_jpeg()[:200], "cut.jpg", "damaged"),
        (b"", "empty.jpg", "empty"),
    ],
)
def test_what_is_not_a_usable_picture_is_refused_with_a_reason(
    editor_client, data, filename, message
):
    response = upload(editor_client, data, filename=filename)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not MediaImage.objects.exists()


def test_files_over_the_size_limit_are_refused(editor_client, settings):
    settings.TIDINGS_MEDIA_MAX_BYTES = 500
    response = upload(editor_client, gps_jpeg(200, 200))
    assert (
        "at most 0.000476837 MB" in response.content.decode()
        or "at most" in response.content.decode()
    )
    assert not MediaImage.objects.exists()


def test_a_picture_that_would_decode_into_too_many_pixels_is_refused(editor_client, settings):
    settings.TIDINGS_MEDIA_MAX_PIXELS = 10_000
    response = upload(editor_client, png("1", (200, 100)), filename="bomb.png")
    assert "million pixels" in response.content.decode()
    assert not MediaImage.objects.exists()


def test_a_picture_far_over_the_pixel_limit_says_so_rather_than_unreadable(
    editor_client, monkeypatch
):
    """A 20,000 × 20,000 PNG (48 KB) tripped Pillow's own bomb guard before ours and was
    called "not a picture tidings can read"."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # 200×100 is then over twice that
    response = upload(editor_client, png("1", (200, 100)), filename="bomb.png")
    page = response.content.decode()
    assert "too many pixels; at most 40 million pixels" in page
    assert "not a picture tidings can read" not in page
    assert not MediaImage.objects.exists()


def test_the_same_picture_uploaded_twice_is_kept_once(editor_client):
    upload(editor_client, gps_jpeg())
    response = upload(editor_client, gps_jpeg(), filename="again.jpg")
    assert MediaImage.objects.count() == 1
    assert response.status_code == 302


def test_pictures_are_served_to_anyone_with_long_cache_headers(editor_client, client):
    upload(editor_client, gps_jpeg())
    image = MediaImage.objects.get()
    client.logout()
    response = client.get(image.path)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.content == bytes(image.data)
    again = client.get(image.path, headers={"If-None-Match": response["ETag"]})
    assert again.status_code == 304
    assert client.get(image.path.replace(image.key, "0" * 32)).status_code == 404


def test_the_library_lists_pictures_and_says_what_it_is_for_when_empty(editor_client):
    empty = editor_client.get(reverse("media:index")).content.decode()
    assert "pictures your emails and public pages show" in empty
    upload(editor_client, gps_jpeg(), alt="A red square")
    listing = editor_client.get(reverse("media:index")).content.decode()
    image = MediaImage.objects.get()
    assert f'src="{image.path}"' in listing and 'alt="A red square"' in listing


def test_pictures_are_nobodys_personal_data_until_an_operator_says_whom_they_show(db, client):
    owner = make_operator("own", "owner")
    client.force_login(owner)
    upload(client, gps_jpeg())
    image = MediaImage.objects.get()
    ada, _ = do_create_contact({"email": "ada@example.com", "name": "Ada"}, purpose="newsletter")
    pictures = source("pictures")
    assert pictures.export(ada) == []

    client.post(
        reverse("media:image", args=[image.pk]), {"form": "personal", "email": "ada@example.com"}
    )
    image.refresh_from_db()
    assert image.contact == ada
    rows = pictures.export(ada)
    assert [row["address"].endswith(image.path) for row in rows] == [True]

    assert pictures.erase(ada) == 1
    assert not MediaImage.objects.exists()


def test_analysts_see_no_library_and_cannot_mark_pictures(db, client):
    client.force_login(make_operator("designer", "editor"))
    upload(client, gps_jpeg())
    image = MediaImage.objects.get()
    client.force_login(make_operator("numbers", "analyst"))
    assert client.get(reverse("media:index")).status_code == 403
    page = reverse("media:image", args=[image.pk])
    assert client.post(page, {"form": "personal", "email": "x@example.com"}).status_code == 403


def test_a_picture_a_template_or_an_unsent_campaign_shows_cannot_be_deleted(editor_client):
    """Deleting it left a scheduled newsletter to go out with a broken picture, unwarned."""
    import json

    from tests.campaigns.lifecycle_helpers import make_campaign, make_template
    from tidings.campaigns.models import Campaign

    upload(editor_client, gps_jpeg())
    image = MediaImage.objects.get()
    blocks = json.dumps({"blocks": [{"type": "image", "src": image.path, "alt": "Us"}]})
    template = make_template("With our photo")
    template.format, template.body = "blocks", blocks
    template.save()
    scheduled = make_campaign(status=Campaign.Status.SCHEDULED, name="June", body=blocks)
    make_campaign(status=Campaign.Status.FINISHED, name="May", body=blocks)  # sent: no matter
    url = reverse("media:image-delete", args=[image.pk])

    response = editor_client.post(url, follow=True)
    page = response.content.decode()
    assert "Not deleted" in page
    assert "the template “With our photo”" in page
    assert "the scheduled campaign “June”" in page
    assert "May" not in page
    assert MediaImage.objects.filter(pk=image.pk).exists()

    template.delete()
    scheduled.status = Campaign.Status.CANCELLED
    scheduled.save()
    editor_client.post(url)
    assert not MediaImage.objects.filter(pk=image.pk).exists()
