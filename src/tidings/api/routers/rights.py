"""Rights requests (filled in once the rights app's RightsRequest model exists)."""

from ninja import Router

router = Router()
