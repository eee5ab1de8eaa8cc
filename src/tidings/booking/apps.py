from django.apps import AppConfig


class BookingConfig(AppConfig):
    name = "tidings.booking"
    label = "booking"
    verbose_name = "Demo booking"

    def ready(self) -> None:
        from tidings.rights.sources import PersonalData, register

        from .models import Booking
        from .personal_data import erase_bookings, export_bookings

        register(
            PersonalData(
                name="demo bookings",
                record_kind="enquiry",  # a booking is part of its enquiry, and goes with it
                models=(Booking,),
                export=export_bookings,
                erase=erase_bookings,
                order=90,  # before the enquiries they belong to
            )
        )
