from django.contrib import admin

# The Django admin is the superusers' back office; it carries the product's name, not Django's.
admin.site.site_header = "tidings"
admin.site.site_title = "tidings"
admin.site.index_title = "Administration"
