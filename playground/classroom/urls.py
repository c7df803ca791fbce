from django.urls import path

from playground.classroom.views import (
    assignments,
    courses,
    grades,
    items,
    joining,
    next_state,
    roster,
    student,
)

app_name = "classroom"

_A = "courses/<int:course_id>/assignments/<int:assignment_id>/"

urlpatterns = [
    # Everyone in a course (views.joining, views.student): my courses, joining, the work.
    path("courses/", joining.my_courses, name="courses"),
    path("courses/join/", joining.join, name="join"),
    path(
        "courses/invitations/<int:invitation_id>/",
        joining.invitation_answer,
        name="invitation_answer",
    ),
    path("courses/invitation/<str:token>/", joining.invitation_link, name="invitation"),
    path("courses/<int:course_id>/", student.course, name="course"),
    path("courses/<int:course_id>/leave/", joining.leave, name="leave"),
    path(_A, student.assignment, name="assignment"),
    path(_A + "start/", student.exam_start, name="exam_start"),
    path(_A + "finish/", student.exam_finish, name="exam_finish"),
    path(_A + "items/<int:item_id>/", student.item, name="item"),
    path(_A + "items/<int:item_id>/submit/", student.submit, name="submit"),
    path(_A + "items/<int:item_id>/next-state/", next_state.next_state, name="next_state"),
    # Staff (views.courses, roster, assignments, items, grades): managing courses and grades.
    path("courses/new/", courses.course_new, name="course_new"),
    path("courses/<int:course_id>/manage/", courses.course_manage, name="course_manage"),
    path("courses/<int:course_id>/gradebook/", grades.course_gradebook, name="course_gradebook"),
    path(
        "courses/<int:course_id>/gradebook.csv",
        grades.course_gradebook_csv,
        name="course_gradebook_csv",
    ),
    path("courses/<int:course_id>/code/", courses.course_code, name="course_code"),
    path("courses/<int:course_id>/time-zone/", courses.course_zone, name="course_zone"),
    path("courses/<int:course_id>/roster/", roster.course_roster, name="course_roster"),
    path(
        "courses/<int:course_id>/invitations/<int:invitation_id>/revoke/",
        roster.invitation_revoke,
        name="invitation_revoke",
    ),
    path(
        "courses/<int:course_id>/invitations/<int:invitation_id>/resend/",
        roster.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "courses/<int:course_id>/members/<int:member_id>/role/",
        roster.member_role,
        name="member_role",
    ),
    path(
        "courses/<int:course_id>/members/<int:member_id>/confirm/",
        roster.member_confirm,
        name="member_confirm",
    ),
    path("courses/<int:course_id>/audit/", courses.audit_log, name="audit_log"),
    path("courses/<int:course_id>/delete/", courses.course_delete, name="course_delete"),
    path(
        "courses/<int:course_id>/assignments/new/",
        assignments.assignment_new,
        name="assignment_new",
    ),
    path(_A + "edit/", assignments.assignment_edit, name="assignment_edit"),
    path(_A + "items/new/", items.item_new, name="item_new"),
    path(_A + "items/<int:item_id>/edit/", items.item_edit, name="item_edit"),
    path(_A + "items/<int:item_id>/delete/", items.item_delete, name="item_delete"),
    path(_A + "items/<int:item_id>/stats/", grades.item_stats, name="item_stats"),
    path(
        _A + "items/<int:item_id>/stats/step-run/",
        next_state.model_run,
        name="next_state_model_run",
    ),
    path(_A + "library/", items.library_search, name="library_search"),
    path(_A + "extensions/", grades.extensions, name="extensions"),
    path(_A + "submissions/", grades.submissions, name="submissions"),
    path(_A + "gradebook/", grades.gradebook, name="gradebook"),
    path(_A + "gradebook.csv", grades.gradebook_csv, name="gradebook_csv"),
    path(
        "courses/<int:course_id>/submissions/<int:submission_id>/override/",
        grades.override,
        name="override",
    ),
]
