from django.urls import path

from mesoclinic.formulary import views

app_name = "formulary"

urlpatterns = [
    path("", views.home, name="home"),
    path("ingredients/", views.ingredients, name="ingredients"),
    path("ingredients/new/", views.ingredient_new, name="ingredient_new"),
    path("ingredients/<int:ingredient_id>/", views.ingredient_detail, name="ingredient"),
    path("ingredients/<int:ingredient_id>/cautions/", views.caution_add, name="caution_add"),
    path("ingredients/<int:ingredient_id>/limits/", views.limit_add, name="limit_add"),
    path("cautions/<int:caution_id>/delete/", views.caution_delete, name="caution_delete"),
    path("limits/<int:limit_id>/delete/", views.limit_delete, name="limit_delete"),
    path("regulatory/", views.regulatory, name="regulatory"),
    path("regulatory/<int:status_id>/delete/", views.regulatory_delete, name="regulatory_delete"),
    path("formulas/new/", views.formula_edit, name="formula_new"),
    path("formulas/<int:formula_id>/", views.formula_detail, name="formula"),
    path("formulas/<int:formula_id>/revise/", views.formula_edit, name="formula_revise"),
    path("stock/", views.stock, name="stock"),
    path("products/new/", views.product_new, name="product_new"),
    path("lots/new/", views.lot_new, name="lot_new"),
    path("lots/<int:lot_id>/", views.lot_detail, name="lot"),
    path("lots/<int:lot_id>/movements/", views.lot_movement, name="lot_movement"),
    path("lots/<int:lot_id>/vials/", views.vial_open, name="vial_open"),
    path("vials/<int:vial_id>/close/", views.vial_close, name="vial_close"),
    path("lots/<int:lot_id>/recall/", views.lot_recall, name="lot_recall"),
    path("lots/<int:lot_id>/exposure/", views.exposure, name="exposure"),
    path("lots/<int:lot_id>/exposure.csv", views.exposure_csv, name="exposure_csv"),
    path("lots/<int:lot_id>/exposure.pdf", views.exposure_pdf, name="exposure_pdf"),
    path("patients/<int:patient_id>/lots/", views.patient_lots, name="patient_lots"),
    path("patients/<int:patient_id>/prepare/", views.preparation_new, name="preparation_new"),
]
