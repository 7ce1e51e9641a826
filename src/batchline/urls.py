from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path, register_converter

from batchline.accounts import views as accounts
from batchline.api.api import api
from batchline.web import audit_views as audit
from batchline.web import configuration_views as configuration
from batchline.web import equipment_views as equipment
from batchline.web import erp_views as erp
from batchline.web import execution_views as execution
from batchline.web import floor_views, gateway_views, recipe_editor
from batchline.web import gateway_change_views as gateway_change
from batchline.web import gateway_config_views as gateway_config
from batchline.web import genealogy_views as genealogy
from batchline.web import masterdata_import_views as masterdata_import
from batchline.web import masterdata_views as masterdata
from batchline.web import material_views as materials
from batchline.web import outbox_views as outbox
from batchline.web import periodic_views as periodic
from batchline.web import quality_views as quality
from batchline.web import recipe_views as recipes
from batchline.web import remainder_views as remainders
from batchline.web import simulator_views as simulator
from batchline.web import step_records_views as step_records
from batchline.web import trail_review_views as trail_reviews
from batchline.web import training_views as training
from batchline.web import validation_views as validation
from batchline.web import views as web


class RecordId:
    """A record id as the database holds it (64-bit): a longer number is no page, not a server error."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(RecordId, "id")

admin.site.site_header = "Batchline administration (every change is audited)"

urlpatterns = [
    path("", web.home, name="home"),
    path("healthz", web.healthz, name="healthz"),
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", accounts.password_change, name="password_change"),
    path("esig/acknowledge/", accounts.esig_acknowledge, name="esig_acknowledge"),
    path("audit/", audit.audit_trail, name="audit_trail"),
    path("audit/export.csv", audit.audit_csv, name="audit_csv"),
    path("audit/reviews/", trail_reviews.trail_reviews, name="trail_reviews"),
    path("audit/reviews/open/", trail_reviews.trail_review_open, name="trail_review_open"),
    path("audit/reviews/<id:pk>/", trail_reviews.trail_review, name="trail_review"),
    path("audit/reviews/<id:pk>/mark/", trail_reviews.trail_review_mark, name="trail_review_mark"),
    path("audit/reviews/<id:pk>/sign/", trail_reviews.trail_review_sign, name="trail_review_sign"),
    path("users/", accounts.users, name="users"),
    path("users/new/", accounts.user_new, name="user_new"),
    path("users/role-requests/", accounts.role_requests, name="role_requests"),
    path(
        "users/role-requests/<id:pk>/<str:decision>/",
        accounts.role_request_decide,
        name="role_request_decide",
    ),
    path("enrol/", accounts.enrol, name="enrol"),
    path("users/<id:pk>/", accounts.user_detail, name="user_detail"),
    path("users/<id:pk>/roles/", accounts.user_roles, name="user_roles"),
    path("users/<id:pk>/<str:action>/", accounts.user_action, name="user_action"),
    path("security/", web.security, name="security"),
    path("reviews/", periodic.periodic, name="periodic"),
    path("reviews/prepare/", periodic.periodic_prepare, name="periodic_prepare"),
    path("reviews/<str:number>/", periodic.periodic_report, name="periodic_report"),
    path("reviews/<str:number>/sign/", periodic.periodic_sign, name="periodic_sign"),
    path("reviews/<str:number>/pdf/", periodic.periodic_pdf, name="periodic_pdf"),
    path("configuration/", configuration.configuration, name="configuration"),
    path("outbox/", outbox.outbox, name="outbox"),
    path("gateway/", gateway_views.gateway, name="gateway"),
    path("gateway/endpoints/new/", gateway_config.endpoint_new, name="gateway_endpoint_new"),
    path(
        "gateway/endpoints/<slug:code>/rename/",
        gateway_config.endpoint_rename,
        name="gateway_endpoint_rename",
    ),
    path(
        "gateway/endpoints/<slug:code>/change/",
        gateway_config.endpoint_change,
        name="gateway_endpoint_change",
    ),
    path(
        "gateway/endpoints/<slug:code>/retire/",
        gateway_config.endpoint_retire,
        name="gateway_endpoint_retire",
    ),
    path("gateway/tags/new/", gateway_config.tag_new, name="gateway_tag_new"),
    path("gateway/tags/<id:pk>/change/", gateway_config.tag_change, name="gateway_tag_change"),
    path("gateway/tags/<id:pk>/retire/", gateway_config.tag_retire, name="gateway_tag_retire"),
    path(
        "gateway/requests/<id:pk>/withdraw/", gateway_config.request_withdraw, name="gateway_request_withdraw"
    ),
    path("outbox/<id:pk>/", outbox.outbox_message, name="outbox_message"),
    path("outbox/<id:pk>/retry/", outbox.outbox_retry, name="outbox_retry"),
    path("configuration/request/", configuration.configuration_request, name="configuration_request"),
    path(
        "configuration/requests/<id:pk>/<str:decision>/",
        configuration.configuration_decide,
        name="configuration_decide",
    ),
    path("security/addresses/unlock/", accounts.address_unlock, name="address_unlock"),
    path(
        "security/alerts/<id:pk>/acknowledge/",
        accounts.security_alert_acknowledge,
        name="security_alert_acknowledge",
    ),
    path("tokens/", accounts.tokens, name="tokens"),
    path("tokens/<id:pk>/revoke/", accounts.token_revoke, name="token_revoke"),
    path("scales/reading/", execution.scale_reading, name="scale_reading"),
    path("scales/simulator/", simulator.scale_simulator_load, name="scale_simulator_load"),
    path("clock/", floor_views.server_clock, name="server_clock"),
    path("batches/<slug:number>/steps/<slug:key>/proposal/", execution.fefo_proposal, name="fefo_proposal"),
    path(
        "batches/<slug:number>/containers/<slug:code>/label.pdf",
        execution.dispensed_label,
        name="dispensed_label",
    ),
    path("batches/<str:number>/remainders/", remainders.remainders, name="batch_remainders"),
    path(
        "batches/<str:number>/remainders/<slug:code>/<str:action>/",
        remainders.remainder_action,
        name="remainder_action",
    ),
    path(
        "batches/<str:number>/returned/<slug:code>/label.pdf",
        remainders.returned_label,
        name="returned_label",
    ),
    path("lots/", materials.lot_list, name="lots"),
    path("lots/receive/", materials.lot_receive, name="lot_receive"),
    path("lots/<id:pk>/", materials.lot_detail, name="lot"),
    path("lots/<id:pk>/disposition/", materials.lot_disposition, name="lot_disposition"),
    path("containers/<slug:code>/label.<str:fmt>", materials.label_print, name="label_print"),
    path("genealogy/", genealogy.recall, name="genealogy"),
    path("genealogy/lots/<id:pk>/<str:direction>/", genealogy.trace, name="genealogy_trace"),
    path("recipes/", recipes.recipe_list, name="recipes"),
    path("recipes/import/", recipes.recipe_import, name="recipe_import"),
    path("recipes/new/", recipe_editor.recipe_new, name="recipe_new"),
    path("recipes/<id:pk>/editor/", recipe_editor.recipe_editor, name="recipe_editor"),
    path("recipes/<id:pk>/editor/change/", recipe_editor.recipe_editor_change, name="recipe_editor_change"),
    path("recipes/<id:pk>/editor/steps/<slug:key>/", recipe_editor.recipe_step_edit, name="recipe_step_edit"),
    path(
        "recipes/<id:pk>/editor/operations/<slug:operation>/add-step/",
        recipe_editor.recipe_step_add,
        name="recipe_step_add",
    ),
    path("recipes/<id:pk>/", recipes.recipe_detail, name="recipe"),
    path("recipes/<id:pk>/edit/", recipes.recipe_edit, name="recipe_edit"),
    path("recipes/<id:pk>/new-version/", recipes.recipe_new_version, name="recipe_new_version"),
    path("recipes/<id:pk>/compare/<id:other>/", recipes.recipe_compare, name="recipe_compare"),
    path("recipes/<id:pk>/<str:command>/", recipes.recipe_transition, name="recipe_transition"),
    path("quality/", quality.worklist, name="quality"),
    path("deviations/", quality.deviation_list, name="deviations"),
    path("deviations/new/", quality.deviation_new, name="deviation_new"),
    path("deviations/<str:number>/", quality.deviation_detail, name="deviation"),
    path("deviations/<str:number>/<str:command>/", quality.deviation_step, name="deviation_step"),
    path("floor/", floor_views.floor, name="floor"),
    path("batches/new/", floor_views.batch_new, name="batch_new"),
    path("batches/<str:number>/", execution.batch, name="batch"),
    path("batches/<str:number>/record/", execution.batch_record, name="batch_record"),
    path(
        "batches/<str:number>/record/<str:fmt>/",
        execution.batch_record_document,
        name="batch_record_document",
    ),
    path("batches/<str:number>/review/", quality.review, name="review"),
    path("batches/<str:number>/review/disposition/", quality.review_disposition, name="review_disposition"),
    path("batches/<str:number>/review/sign/", quality.review_sign, name="review_sign"),
    path("batches/<str:number>/scan/", execution.scan, name="batch_scan"),
    path("batches/<str:number>/command/<str:command>/", execution.batch_action, name="batch_action"),
    path("batches/<str:number>/steps/<str:key>/<str:action>/", execution.step_action, name="step_action"),
    path(
        "batches/<str:number>/steps/<str:key>/device/<str:name>/",
        execution.device_reading,
        name="device_reading",
    ),
    path(
        "batches/<str:number>/steps/<str:key>/record/<str:action>/",
        step_records.record_action,
        name="step_record",
    ),
    path("batches/<str:number>/samples/<str:code>/label.pdf", step_records.sample_label, name="sample_label"),
    path("batches/<str:number>/output/<str:code>/label.pdf", step_records.output_label, name="output_label"),
    path("equipment/", equipment.board, name="equipment"),
    path("equipment/<str:code>/", equipment.detail, name="equipment_detail"),
    path("equipment/<str:code>/<str:action>/", equipment.action, name="equipment_action"),
    path("training/", training.training, name="training"),
    path("training/records/", training.training_add, name="training_add"),
    # Master data: the changes page and a decision come first, so that no kind is called "changes".
    path("validation/", validation.validation, name="validation"),
    path("validation/<id:pk>/", validation.validation_package, name="validation_package"),
    path("validation/<id:pk>/sign/", validation.validation_sign, name="validation_sign"),
    path("validation/<id:pk>/archive/", validation.validation_download, name="validation_download"),
    path("integration/erp/", erp.erp_messages, name="erp_messages"),
    path("master-data/", masterdata.master_data, name="master_data"),
    path("master-data/changes/", masterdata.master_changes, name="master_changes"),
    path("master-data/changes/<id:pk>/<str:decision>/", masterdata.master_decide, name="master_decide"),
    path(
        "master-data/gateway-changes/<id:pk>/<str:decision>/",
        gateway_change.gateway_change_decide,
        name="gateway_change_decide",
    ),
    path("master-data/import/", masterdata_import.master_import, name="master_import"),
    path("master-data/import/file/", masterdata_import.master_import_post, name="master_import_post"),
    path(
        "master-data/imports/<id:pk>/<str:decision>/",
        masterdata_import.master_import_decide,
        name="master_import_decide",
    ),
    path("master-data/<slug:kind>/", masterdata.master_kind, name="master_kind"),
    # A code may hold "/" (definitions.CODE), hence <path:…>; the actions are matched before the item.
    path(
        "master-data/<slug:kind>/<path:code>/change/",
        masterdata.master_item_change,
        name="master_item_change",
    ),
    path(
        "master-data/<slug:kind>/<path:code>/retire/",
        masterdata.master_item_retire,
        name="master_item_retire",
    ),
    path("master-data/<slug:kind>/<path:code>/", masterdata.master_item, name="master_item"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]
