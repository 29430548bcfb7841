from django.contrib import admin

from staff.forms import StaffLoginForm

# The one admin site everyone shares: its login asks for the second factor of users who enrolled one.
admin.site.login_form = StaffLoginForm
admin.site.login_template = "admin/staff/login.html"
