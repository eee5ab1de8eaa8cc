"""The media library's pages (operators) and the pictures themselves (public: emails show them)."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from tidings.lib.access import has_permission, operator_required

from . import actions
from .forms import DescribeForm, PersonalForm, UploadForm
from .images import ImageRefused
from .models import MediaImage
from .queries import library

PAGE_SIZE = 48
CACHE_FOR_EVER = "public, max-age=31536000, immutable"


@operator_required(perm="content")
def index(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        stem = upload.name.rsplit(".", 1)[0].replace("_", " ").replace("-", " ")
        try:
            image, created = actions.do_upload_image(
                upload.read(),
                name=form.cleaned_data["name"] or stem,
                alt=form.cleaned_data["alt"],
                actor=request.user,
            )
        except ImageRefused as exc:
            form.add_error("file", f"This picture cannot be used: {exc}.")
        else:
            if created:
                messages.success(request, f"Added {image.name} ({image.width}×{image.height}).")
            else:
                messages.info(request, f"This picture is already in the library as {image.name}.")
            return redirect("media:image", image.pk)
    page = Paginator(library().select_related("contact"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "media/library.html", {"form": form, "page": page})


@operator_required(perm="content")
def image_detail(request: HttpRequest, image_id: int) -> HttpResponse:
    image = get_object_or_404(library().select_related("contact"), pk=image_id)
    describe = DescribeForm(
        request.POST if request.POST.get("form") == "describe" else None,
        initial={"name": image.name, "alt": image.alt},
    )
    may_mark = has_permission(request.user, "people")
    personal = PersonalForm(
        request.POST if request.POST.get("form") == "personal" and may_mark else None,
        initial={"email": image.contact.email if image.contact else ""},
    )
    if request.method == "POST":
        if describe.is_bound and describe.is_valid():
            actions.do_describe_image(
                image,
                name=describe.cleaned_data["name"],
                alt=describe.cleaned_data["alt"],
                actor=request.user,
            )
            messages.success(request, "Saved.")
            return redirect("media:image", image.pk)
        if personal.is_bound and personal.is_valid():
            contact = personal.cleaned_data["email"]
            actions.do_mark_image_personal(image, contact, actor=request.user)
            messages.success(
                request,
                "Marked as personal data of that contact: their access requests include it and "
                "erasing them removes it."
                if contact
                else "Marked as showing nobody who could be recognised.",
            )
            return redirect("media:image", image.pk)
        if not (describe.is_bound or personal.is_bound):
            raise Http404
    return render(
        request,
        "media/image.html",
        {"image": image, "describe": describe, "personal": personal, "may_mark": may_mark},
    )


@require_POST
@operator_required(perm="content")
def image_delete(request: HttpRequest, image_id: int) -> HttpResponse:
    image = get_object_or_404(library(), pk=image_id)
    try:
        actions.do_delete_image(image, actor=request.user)
    except actions.ImageInUse as exc:
        messages.error(
            request,
            f"Not deleted: {image.name} is {exc}. Take it out of them first, or mail sent from "
            "them would show a missing picture.",
        )
        return redirect("media:image", image.pk)
    messages.success(request, f"Deleted {image.name}.")
    return redirect("media:index")


@require_GET
def serve(request: HttpRequest, key: str, name: str) -> HttpResponse:
    """A picture, by the hash of its bytes: the same address never shows anything else, so
    browsers and mail proxies may keep it for a year.  The name in the address is cosmetic."""
    etag = f'"{key}"'
    if request.headers.get("If-None-Match") == etag:
        if not MediaImage.objects.filter(key=key).exists():
            raise Http404
        response: HttpResponse = HttpResponseNotModified()
    else:
        row = MediaImage.objects.filter(key=key).values_list("data", "content_type").first()
        if row is None:
            raise Http404
        response = HttpResponse(bytes(row[0]), content_type=row[1])
    response["Cache-Control"] = CACHE_FOR_EVER
    response["ETag"] = etag
    # Webmail and mail programs load it from their own origins.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
