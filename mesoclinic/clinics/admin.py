from django.contrib import admin

from mesoclinic.clinics.models import Clinic, Device, Organisation, Room


class RoomInline(admin.TabularInline[Room, Clinic]):
    model = Room
    extra = 0


class DeviceInline(admin.TabularInline[Device, Clinic]):
    model = Device
    extra = 0


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin[Organisation]):
    search_fields = ["name"]


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin[Clinic]):
    list_display = ["name", "organisation", "jurisdiction", "time_zone", "currency"]
    inlines = [RoomInline, DeviceInline]
