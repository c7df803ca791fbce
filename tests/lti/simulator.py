"""A small LTI 1.3 platform (an LMS as far as this tool can tell), a real HTTP server for the
tests: it signs id_tokens with its own RSA key and serves its key set, runs the OIDC auth
endpoint (answering with the auto-posting form an LMS sends), the OAuth2 token endpoint (the
tool's client assertion verified against the tool's real JWKS, fetched over HTTP), line items
and scores, and the deep-linking return (the tool's JWT verified the same way). It records
what it received; a test may make it misbehave (a wrong key, a 500 once)."""

from __future__ import annotations

import contextlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
AGS_SCOPES = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
]


def _key() -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private, json.loads(RSAAlgorithm.to_jwk(private.public_key()))


@dataclass
class Person:
    sub: str
    roles: list[str]
    given_name: str = ""
    family_name: str = ""
    email: str = ""


@dataclass
class Prepared:
    """One launch the LMS will make (its lti_message_hint), and how to spoil it."""

    person: Person
    context_id: str = "ctx-1"
    context_title: str = "CS 101 (LMS)"
    message_type: str = "LtiResourceLinkRequest"
    resource_link_id: str = "link-1"
    custom: dict[str, str] = field(default_factory=dict)
    ags: bool = True
    lineitem: str = ""  # a line item the LMS already made for the link
    # Spoilers
    aud: Any = None
    deployment_id: str | None = None
    exp_delta: int = 300
    rogue_key: bool = False
    nonce: str | None = None


class Simulator:
    def __init__(self, *, host: str = "127.0.0.1", public_host: str | None = None) -> None:
        self.private, self.jwk = _key()
        self.kid = "sim-key-1"
        self.jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        self.rogue, _ = _key()
        self.client_id = "tool-client-1"
        self.deployment_id = "deployment-1"
        self.tool_jwks_url = ""
        self.server = ThreadingHTTPServer((host, 0), _Handler)
        self.server.sim = self  # type: ignore[attr-defined]
        self.base = f"http://{public_host or host}:{self.server.server_address[1]}"
        self.issuer = self.base
        self.lock = threading.Lock()
        self.reset()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        with self.lock:
            self.prepared: dict[str, Prepared] = {}
            self.id_tokens: list[str] = []
            self.token_requests: list[dict[str, Any]] = []
            self.tokens: set[str] = set()
            self.line_items: dict[str, dict[str, Any]] = {}
            self.scores: list[dict[str, Any]] = []
            self.deep_link_returns: list[dict[str, Any]] = []
            self.fail_scores = 0
            # Scores to take and then hold unanswered (a worker to kill mid-send): ``held`` is
            # set when one is held, ``release`` lets it answer (or the close does).
            self.hold_scores = 0
            self.held = threading.Event()
            self.release = threading.Event()
            self.refused: list[str] = []

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    # What the LMS's admin types into the tool's registration.
    def registration(self) -> dict[str, Any]:
        return {
            "name": "Simulated LMS",
            "issuer": self.issuer,
            "client_id": self.client_id,
            "deployment_ids": [self.deployment_id],
            "auth_login_url": self.base + "/auth",
            "auth_token_url": self.base + "/token",
            "jwks_url": self.base + "/jwks",
        }

    def prepare(self, launch: Prepared) -> str:
        hint = secrets.token_urlsafe(8)
        with self.lock:
            self.prepared[hint] = launch
        return hint

    def login_query(self, hint: str, tool_base: str) -> str:
        """The query of the third-party login initiation the LMS sends to the tool."""
        launch = self.prepared[hint]
        return urlencode(
            {
                "iss": self.issuer,
                "login_hint": launch.person.sub,
                "target_link_uri": tool_base + "/lti/launch/",
                "lti_message_hint": hint,
                "client_id": self.client_id,
                "lti_deployment_id": self.deployment_id,
            }
        )

    def lineitems_url(self, context_id: str) -> str:
        return f"{self.base}/lineitems/{context_id}"

    def id_token(self, launch: Prepared, nonce: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": launch.aud if launch.aud is not None else self.client_id,
            "sub": launch.person.sub,
            "iat": now,
            "exp": now + launch.exp_delta,
            "nonce": launch.nonce if launch.nonce is not None else nonce,
            "given_name": launch.person.given_name,
            "family_name": launch.person.family_name,
            "email": launch.person.email,
            LTI + "message_type": launch.message_type,
            LTI + "version": "1.3.0",
            LTI + "deployment_id": launch.deployment_id or self.deployment_id,
            LTI + "roles": launch.person.roles,
            LTI + "context": {"id": launch.context_id, "title": launch.context_title},
            LTI + "target_link_uri": "",
        }
        if launch.message_type == "LtiResourceLinkRequest":
            claims[LTI + "resource_link"] = {"id": launch.resource_link_id, "title": "A link"}
            if launch.custom:
                claims[LTI + "custom"] = launch.custom
            if launch.ags:
                endpoint: dict[str, Any] = {
                    "scope": AGS_SCOPES,
                    "lineitems": self.lineitems_url(launch.context_id),
                }
                if launch.lineitem:
                    endpoint["lineitem"] = launch.lineitem
                claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = endpoint
        else:
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": self.base + "/deep_link_return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": True,
                "data": "opaque-lms-data",
            }
        key = self.rogue if launch.rogue_key else self.private
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})

    def verify_tool_jwt(self, token: str, audience: str) -> dict[str, Any]:
        """A JWT the tool signed, checked against the tool's published key set."""
        keys = httpx.get(self.tool_jwks_url, timeout=10).json()
        kid = jwt.get_unverified_header(token)["kid"]
        found = next(k for k in keys["keys"] if k["kid"] == kid)
        public = RSAAlgorithm.from_jwk(json.dumps(found))
        return jwt.decode(token, public, algorithms=["RS256"], audience=audience)  # type: ignore[arg-type]


def _form_page(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    return (
        "<!doctype html><html><body><p>Returning to the tool…</p>"
        f'<form id="lti" method="post" action="{html.escape(action)}">{inputs}'
        '<button type="submit">Continue</button></form>'
        "<script>document.getElementById('lti').submit()</script></body></html>"
    )


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def sim(self) -> Simulator:
        return self.server.sim  # type: ignore[attr-defined,no-any-return]

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = (
            body
            if isinstance(body, bytes)
            else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, url: str) -> None:
        self.send_response(302)
        self.send_header("Location", url)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _bearer_ok(self) -> bool:
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self.sim.tokens:
            self.sim.refused.append("bad bearer")
            self._send(401, {"error": "invalid_token"})
            return False
        return True

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        sim = self.sim
        if parts.path == "/jwks":
            self._send(200, {"keys": [sim.jwk]})
        elif parts.path.startswith("/start/"):
            # The LMS page a person clicks: the third-party login initiation to the tool.
            hint = parts.path.removeprefix("/start/")
            tool = query["tool"]
            self._redirect(tool + "/lti/login/?" + sim.login_query(hint, tool))
        elif parts.path == "/auth":
            launch = sim.prepared.get(query.get("lti_message_hint", ""))
            wanted = {
                "scope": "openid",
                "response_type": "id_token",
                "response_mode": "form_post",
                "prompt": "none",
                "client_id": sim.client_id,
            }
            if launch is None or any(query.get(k) != v for k, v in wanted.items()):
                sim.refused.append(f"auth: {query}")
                self._send(400, {"error": "invalid_request"})
                return
            if query.get("login_hint") != launch.person.sub:
                self._send(400, {"error": "login_hint"})
                return
            token = sim.id_token(launch, query["nonce"])
            with sim.lock:
                sim.id_tokens.append(token)
            page = _form_page(query["redirect_uri"], {"id_token": token, "state": query["state"]})
            self._send(200, page, "text/html")
        elif parts.path.startswith("/lineitems/"):
            if not self._bearer_ok():
                return
            context = parts.path.removeprefix("/lineitems/").split("/")[0]
            items = [
                i
                for i in sim.line_items.values()
                if i["context"] == context
                and all(
                    i.get(f) == query[q]
                    for q, f in (
                        ("resource_id", "resourceId"),
                        ("resource_link_id", "resourceLinkId"),
                    )
                    if q in query
                )
            ]
            self._send(200, [{k: v for k, v in i.items() if k != "context"} for i in items])
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        sim = self.sim
        body = self._body()
        if parts.path == "/token":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            record = {"form": form, "ok": False}
            try:
                assert form["grant_type"] == "client_credentials"
                assert (
                    form["client_assertion_type"]
                    == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                )
                claims = sim.verify_tool_jwt(form["client_assertion"], sim.base + "/token")
                assert claims["iss"] == claims["sub"] == sim.client_id
                record["ok"] = True
            except Exception as exc:
                record["error"] = repr(exc)
                with sim.lock:
                    sim.token_requests.append(record)
                self._send(400, {"error": "invalid_client"})
                return
            token = secrets.token_urlsafe(16)
            with sim.lock:
                sim.token_requests.append(record)
                sim.tokens.add(token)
            self._send(
                200,
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": form.get("scope", ""),
                },
            )
        elif parts.path.startswith("/lineitems/") and parts.path.endswith("/scores"):
            if not self._bearer_ok():
                return
            if self.headers.get("Content-Type") != "application/vnd.ims.lis.v1.score+json":
                self._send(415, {"error": "content type"})
                return
            with sim.lock:
                holding = False
                if sim.fail_scores > 0:
                    sim.fail_scores -= 1
                    failing = True
                else:
                    failing = False
                    url = sim.base + parts.path.removesuffix("/scores")
                    sim.scores.append({"lineitem": url, **json.loads(body)})
                    if sim.hold_scores > 0:
                        sim.hold_scores -= 1
                        holding = True
            if failing:
                self._send(500, {"error": "the LMS is having a bad day"})
            elif holding:  # taken, then no answer until released: the sender may die meanwhile
                sim.held.set()
                sim.release.wait(60)
                with contextlib.suppress(OSError):  # the sender may be gone
                    self._send(200, {})
            else:
                self._send(200, {})
        elif parts.path.startswith("/lineitems/"):
            if not self._bearer_ok():
                return
            context = parts.path.removeprefix("/lineitems/").split("/")[0]
            item = json.loads(body)
            with sim.lock:
                url = f"{sim.base}/lineitems/{context}/{len(sim.line_items) + 1}"
                sim.line_items[url] = {**item, "id": url, "context": context}
            self._send(201, {**item, "id": url}, "application/vnd.ims.lis.v2.lineitem+json")
        elif parts.path == "/deep_link_return":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            try:
                claims = sim.verify_tool_jwt(form["JWT"], sim.issuer)
            except Exception as exc:
                with sim.lock:
                    sim.deep_link_returns.append({"error": repr(exc)})
                self._send(400, "<p>The tool's answer did not verify.</p>", "text/html")
                return
            with sim.lock:
                sim.deep_link_returns.append(claims)
            items = claims.get("https://purl.imsglobal.org/spec/lti-dl/claim/content_items", [])
            titles = "".join(f"<li>{html.escape(str(i.get('title')))}</li>" for i in items)
            self._send(
                200, f"<h1 id='lms-received'>The LMS added</h1><ul>{titles}</ul>", "text/html"
            )
        else:
            self._send(404, {"error": "not found"})
