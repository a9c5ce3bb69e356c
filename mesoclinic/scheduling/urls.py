from django.urls import path

from mesoclinic.scheduling import views

app_name = "scheduling"

urlpatterns = [
    path("", views.calendar, name="calendar"),
    path("book/", views.book, name="book"),
    path("availability/", views.availability, name="availability"),
    path("appointments/<int:appointment_id>/", views.appointment, name="appointment"),
    path("appointments/<int:appointment_id>/check-in/", views.check_in, name="check_in"),
    path("appointments/<int:appointment_id>/cancel/", views.cancel, name="cancel"),
    path("appointments/<int:appointment_id>/no-show/", views.no_show, name="no_show"),
    path("appointments/<int:appointment_id>/move/", views.move, name="move"),
    path("appointments/<int:appointment_id>/appointment.ics", views.appointment_ics, name="ics"),
    path("series/<int:plan_id>/", views.series, name="series"),
    path("patients/<int:patient_id>/panel/", views.panel, name="panel"),
    path("patients/<int:patient_id>/preferences/", views.preferences, name="preferences"),
    path("hours/", views.hours, name="hours"),
    path("settings/", views.settings_page, name="settings"),
    path("messages/", views.outbox, name="outbox"),
    path("feed/", views.feed, name="feed"),
    path("feeds/<str:token>.ics", views.feed_ics, name="feed_ics"),
    path("portal/", views.portal, name="portal"),
    path("portal/book/", views.portal_book, name="portal_book"),
    path("portal/appointments/<int:appointment_id>/move/", views.portal_move, name="portal_move"),
    path("portal/preferences/", views.portal_preferences, name="portal_preferences"),
]
