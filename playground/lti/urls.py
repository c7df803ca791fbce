from django.urls import path

from playground.lti import views

app_name = "lti"

urlpatterns = [
    path("lti/jwks/", views.jwks, name="jwks"),
    path("lti/login/", views.oidc_login, name="login"),
    path("lti/launch/", views.launch_view, name="launch"),
    path("lti/deep-link/<slug:token>/", views.deep_link, name="deep_link"),
    path("lti/courses/<int:course_id>/scores/", views.scores, name="scores"),
    path("lti/courses/<int:course_id>/scores/<int:pk>/resend/", views.resend, name="resend"),
]
