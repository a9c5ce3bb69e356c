from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django_otp.admin import OTPAdminSite

from mesoclinic.accounts.models import ApiToken, Membership, PractitionerLicence, User

# The admin site asks for the authenticator code too.
admin.site.__class__ = OTPAdminSite


class MembershipInline(admin.TabularInline[Membership, User]):
    model = Membership
    extra = 0


class LicenceInline(admin.TabularInline[PractitionerLicence, User]):
    model = PractitionerLicence
    extra = 0


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    inlines = [MembershipInline, LicenceInline]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    list_display = ["user", "name", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["key_hash", "created_at", "last_used_at"]
