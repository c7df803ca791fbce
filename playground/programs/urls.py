from django.urls import path

from playground.programs import views

app_name = "programs"

urlpatterns = [
    path("library/", views.library, name="library"),
    path("library/puzzles/<str:name>/", views.puzzle_detail, name="puzzle"),
    path("library/tasks/<slug:name>/", views.task_detail, name="task"),
    path("library/tasks/<slug:name>/<int:index>/", views.task_example, name="task_example"),
    path("programs/new/", views.program_new, name="new"),
    path("programs/mine/", views.my_programs, name="mine"),
    path("programs/<int:pk>/", views.program_detail, name="detail"),
    path("programs/<int:pk>/visibility/", views.program_visibility, name="visibility"),
    path("programs/<int:pk>/delete/", views.program_delete, name="delete"),
]
