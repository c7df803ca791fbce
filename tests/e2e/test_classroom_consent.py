"""H2 in real browsers against the whole product (make run's launcher: web, Celery workers,
the sandbox; mail written to files by Django's file backend into tests/conftest.py's
``mail_dir``), done as a hostile user would: an attacker signs up, makes a course with an exam
open until 2099 and uploads a roster naming the victim (who has an account) and identities
nobody owns yet. The victim is not enrolled and still runs programs; a squatter who registers
the names on the roster's assistant rows gets no staff page; the victim accepts a real
invitation from the e-mail, sees what exam mode means, and leaves the course."""

from __future__ import annotations

import email
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
PASSWORD = "a long enough passphrase 42"
ROSTER = b"email,role\nvictim\nvictim@uni.edu\nsquatter,assistant\nsquat@uni.edu,assistant\n"


def _sign_up(browser: Browser, stack: Stack, username: str, address: str) -> Page:
    page = browser.new_context().new_page()
    page.set_default_timeout(30_000)
    page.goto(f"http://127.0.0.1:{stack.port}/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("E-mail (optional)").fill(address)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(lambda url: "/signup/" not in url)
    return page


def _mails_to(mail_dir: Path, address: str) -> list[email.message.Message]:
    found = []
    for path in sorted(mail_dir.glob("*")):
        for chunk in path.read_text(encoding="utf-8").split("\n" + "-" * 79 + "\n"):
            if chunk.strip():
                message = email.message_from_string(chunk.strip("\n"))
                if address in str(message.get("To", "")):
                    found.append(message)
    return found


def _link_mailed_to(mail_dir: Path, address: str, timeout: float = 60) -> str:
    """The invitation link in the mail the llm worker sent to ``address``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in _mails_to(mail_dir, address):
            payload = message.get_payload(decode=True)
            assert isinstance(payload, bytes)
            link = re.search(r"http://\S+/courses/invitation/\S+/", payload.decode("utf-8"))
            if link:
                return link.group(0)
        time.sleep(0.5)
    raise AssertionError(f"no mail to {address} in {sorted(mail_dir.iterdir())}")


def _open_sample(page: Page, base: str) -> None:
    page.goto(base + "/library/?dataset=cruxeval&q=sample_5")
    page.get_by_role("link", name="CRUXEval sample_5", exact=True).click()


def _run_sample(page: Page, base: str) -> None:
    _open_sample(page, base)
    page.get_by_role("button", name="Run it for real").click()
    expect(page.locator("#trace-status")).to_contain_text("Finished", timeout=60_000)


def test_a_roster_cannot_enrol_lock_out_or_promote_anyone(
    stack: Stack, browser: Browser, mail_dir: Path
) -> None:
    base = f"http://127.0.0.1:{stack.port}"
    victim = _sign_up(browser, stack, "victim", "victim@uni.edu")

    # The attacker: a course, an exam-mode assignment open now and until 2099, the roster.
    attacker = _sign_up(browser, stack, "mallory", "")
    attacker.goto(base + "/courses/new/")
    attacker.get_by_label("Title").fill("Totally legit course")
    attacker.get_by_role("button", name="Create course").click()
    manage_url = attacker.url.split("#")[0]
    code = attacker.locator("#join-code").inner_text().strip()
    attacker.get_by_role("link", name="New assignment").click()
    attacker.get_by_label("Title").fill("Surprise exam")
    attacker.locator("#id_opens_at").fill("2020-01-01T00:00")
    attacker.locator("#id_due_at").fill("2099-01-01T00:00")
    attacker.get_by_label("Exam mode", exact=False).check()
    attacker.get_by_role("button", name="Create assignment").click()
    attacker.goto(manage_url)
    attacker.locator("#id_file").set_input_files(
        files=[{"name": "roster.csv", "mimeType": "text/csv", "buffer": ROSTER}]
    )
    attacker.get_by_role("button", name="Send the invitations").click()
    expect(attacker.locator("#members")).not_to_contain_text("victim")
    report = attacker.locator(".messages")
    expect(report).to_contain_text(
        "Roster read: 2 invitations e-mailed, 1 person invited on their “My courses” page."
    )
    expect(report).to_contain_text("Row 4: no account is named 'squatter'")

    # The victim is not in the course: the exam does not bind them, their runs work.
    victim.goto(base + "/courses/")
    expect(victim.locator("#invitations")).to_contain_text("Totally legit course")
    expect(victim.locator("#my-courses")).not_to_contain_text("Totally legit course")
    _run_sample(victim, base)
    victim.goto(base + "/courses/")
    victim.locator("#invitations").get_by_role("button", name="Decline").click()
    expect(victim.locator(".messages")).to_contain_text("You declined the invitation")

    # A squatter registers the names of the assistant rows: no invitation, no staff page,
    # and with the join code (it leaks) a student like any other.
    squatter = _sign_up(browser, stack, "squatter", "squat@uni.edu")
    squatter.goto(base + "/courses/")
    expect(squatter.locator("#invitations")).to_have_count(0)
    assert squatter.goto(manage_url).status == 404
    squatter.goto(base + "/courses/")
    squatter.get_by_label("Join code").fill(code)
    squatter.get_by_role("button", name="Join").click()
    expect(squatter.get_by_role("heading", name="Totally legit course")).to_contain_text("Student")
    assert squatter.goto(manage_url).status == 403

    # The victim accepts the e-mailed invitation: now, and only now, the exam binds them...
    link = _link_mailed_to(mail_dir, "victim@uni.edu")
    assert _mails_to(mail_dir, "squat@uni.edu")  # the squatted address got a link, not them
    victim.goto(link)
    victim.get_by_role("button", name="Accept as victim").click()
    expect(victim.get_by_role("heading", name="Totally legit course")).to_be_visible()
    _open_sample(victim, base)
    expect(victim.locator("#run-refusal")).to_contain_text("Exam mode")
    expect(victim.get_by_role("button", name="Run it for real")).to_have_count(0)
    # ...the link was single-use...
    assert victim.goto(link).status == 410
    # ...and they can leave (during the exam: for good, until it ends).
    victim.goto(manage_url.replace("/manage/", "/"))
    victim.get_by_text("Leave this course").click()
    victim.get_by_role("button", name="Leave “Totally legit course”").click()
    expect(victim.locator(".messages")).to_contain_text("You left “Totally legit course”.")
    expect(victim.locator("#my-courses")).not_to_contain_text("Totally legit course")
    victim.get_by_label("Join code").fill(code)
    victim.get_by_role("button", name="Join").click()
    expect(victim.locator("#join-error")).to_contain_text("you can come back after it ends")
    _run_sample(victim, base)  # out of the course: no longer bound, and no longer answering

    # The attacker's own audit log tells the story.
    attacker.goto(manage_url.replace("/manage/", "/audit/"))
    log = attacker.locator("#audit-log")
    for line in ("Invitation declined", "Invitation accepted", "Left the course"):
        expect(log).to_contain_text(line)
    for page in (victim, attacker, squatter):
        page.close()
