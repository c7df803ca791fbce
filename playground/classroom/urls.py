from django.urls import path

from playground.classroom import views_staff as staff
from playground.classroom import views_student as student

app_name = "classroom"

_A = "courses/<int:course_id>/assignments/<int:assignment_id>/"

urlpatterns = [
    # Everyone in a course (views_student): my courses, joining, the course, its assignments.
    path("courses/", student.my_courses, name="courses"),
    path("courses/join/", student.join, name="join"),
    path(
        "courses/invitations/<int:invitation_id>/",
        student.invitation_answer,
        name="invitation_answer",
    ),
    path("courses/invitation/<str:token>/", student.invitation_link, name="invitation"),
    path("courses/<int:course_id>/", student.course, name="course"),
    path("courses/<int:course_id>/leave/", student.leave, name="leave"),
    path(_A, student.assignment, name="assignment"),
    path(_A + "items/<int:item_id>/", student.item, name="item"),
    path(_A + "items/<int:item_id>/submit/", student.submit, name="submit"),
    # Staff (views_staff): managing courses, assignments, grades.
    path("courses/new/", staff.course_new, name="course_new"),
    path("courses/<int:course_id>/manage/", staff.course_manage, name="course_manage"),
    path("courses/<int:course_id>/code/", staff.course_code, name="course_code"),
    path("courses/<int:course_id>/roster/", staff.course_roster, name="course_roster"),
    path(
        "courses/<int:course_id>/invitations/<int:invitation_id>/revoke/",
        staff.invitation_revoke,
        name="invitation_revoke",
    ),
    path(
        "courses/<int:course_id>/invitations/<int:invitation_id>/resend/",
        staff.invitation_resend,
        name="invitation_resend",
    ),
    path(
        "courses/<int:course_id>/members/<int:member_id>/role/",
        staff.member_role,
        name="member_role",
    ),
    path(
        "courses/<int:course_id>/members/<int:member_id>/confirm/",
        staff.member_confirm,
        name="member_confirm",
    ),
    path("courses/<int:course_id>/audit/", staff.audit_log, name="audit_log"),
    path("courses/<int:course_id>/delete/", staff.course_delete, name="course_delete"),
    path("courses/<int:course_id>/assignments/new/", staff.assignment_new, name="assignment_new"),
    path(_A + "edit/", staff.assignment_edit, name="assignment_edit"),
    path(_A + "items/new/", staff.item_new, name="item_new"),
    path(_A + "items/<int:item_id>/edit/", staff.item_edit, name="item_edit"),
    path(_A + "items/<int:item_id>/delete/", staff.item_delete, name="item_delete"),
    path(_A + "items/<int:item_id>/stats/", staff.item_stats, name="item_stats"),
    path(_A + "library/", staff.library_search, name="library_search"),
    path(_A + "extensions/", staff.extensions, name="extensions"),
    path(_A + "submissions/", staff.submissions, name="submissions"),
    path(_A + "gradebook/", staff.gradebook, name="gradebook"),
    path(_A + "gradebook.csv", staff.gradebook_csv, name="gradebook_csv"),
    path(
        "courses/<int:course_id>/submissions/<int:submission_id>/override/",
        staff.override,
        name="override",
    ),
]
