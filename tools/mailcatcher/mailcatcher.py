#!/usr/bin/env python3
"""A local mail catcher: a real SMTP server (aiosmtpd) that keeps what it receives in memory and
shows it on a small web page and a JSON API. The demo points the product's SMTP settings at it so
a user sees the alerts it sends; the tests read messages back through the JSON API and steer its
failures.

    mailcatcher.py --smtp 127.0.0.1:1025 --http 127.0.0.1:8025 [--auth user:password]
                   [--starttls-cert cert.pem --starttls-key key.pem]

Once both ports are bound it prints one line to stdout:

    mailcatcher ready smtp=127.0.0.1:1025 http=http://127.0.0.1:8025

HTTP:
    GET    /                      the inbox (HTML)
    GET    /messages/<n>          one message, its HTML part in a sandboxed frame, and its text
    GET    /messages/<n>/html     the HTML part alone (served with a CSP that blocks everything
                                  but inline styles)
    GET    /api/messages          every message as JSON (from, to, subject, messageId, text, html)
    DELETE /api/messages          forget every message
    POST   /api/faults            {"rejectNext": n, "code": 451, "delayData": s, "delayRcpt": s}:
                                  answer the next n DATA commands with `code`; hold each DATA or
                                  RCPT command this many seconds (a slow or hung server)
"""

import argparse
import asyncio
import email
import email.policy
import html
import json
import ssl
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Inbox:
    def __init__(self):
        self.lock = threading.Lock()
        self.messages = []
        self.reject_next = 0
        self.reject_code = 451
        self.delay_data = 0.0
        self.delay_rcpt = 0.0
        self.data_commands = 0

    def add(self, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text_part = parsed.get_body(preferencelist=("plain",))
        html_part = parsed.get_body(preferencelist=("html",))
        with self.lock:
            entry = {
                "id": len(self.messages) + 1,
                "receivedAt": datetime.now(timezone.utc).isoformat(),
                "mailFrom": envelope.mail_from,
                "rcptTos": list(envelope.rcpt_tos),
                "from": str(parsed.get("From", "")),
                "to": str(parsed.get("To", "")),
                "subject": str(parsed.get("Subject", "")),
                "messageId": str(parsed.get("Message-ID", "")),
                "contentType": parsed.get_content_type(),
                "text": text_part.get_content() if text_part is not None else None,
                "html": html_part.get_content() if html_part is not None else None,
            }
            self.messages.append(entry)
            return entry


class Handler:
    def __init__(self, inbox):
        self.inbox = inbox

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.inbox.lock:
            delay = self.inbox.delay_rcpt
        if delay > 0:
            await asyncio.sleep(delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.inbox.lock:
            self.inbox.data_commands += 1
            delay = self.inbox.delay_data
            reject = self.inbox.reject_next > 0
            if reject:
                self.inbox.reject_next -= 1
            code = self.inbox.reject_code
        if delay > 0:
            await asyncio.sleep(delay)
        if reject:
            return f"{code} Requested action not taken: try again later (mailcatcher fault)"
        self.inbox.add(envelope)
        return "250 Message accepted for delivery"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        # handled=False: aiosmtpd answers 535 itself when the check fails.
        return AuthResult(success=ok, handled=False)


PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem}}
table{{border-collapse:collapse;width:100%}}td,th{{text-align:left;padding:.4rem;border-bottom:1px solid #ddd}}
iframe{{width:100%;height:60vh;border:1px solid #ccc}}pre{{white-space:pre-wrap}}</style>
</head><body>{body}</body></html>"""


def make_http_handler(inbox):
    class Http(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body, content_type, csp=None):
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header(
                "Content-Security-Policy",
                csp or "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'",
            )
            self.end_headers()
            self.wfile.write(data)

        def find(self, raw):
            try:
                n = int(raw)
            except ValueError:
                return None
            with inbox.lock:
                return next((m for m in inbox.messages if m["id"] == n), None)

        def do_GET(self):
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if parts == ["api", "messages"]:
                with inbox.lock:
                    body = json.dumps({"messages": inbox.messages, "dataCommands": inbox.data_commands})
                return self.reply(200, body, "application/json")
            if not parts:
                with inbox.lock:
                    rows = "".join(
                        f"<tr><td>{m['id']}</td><td><a href=\"/messages/{m['id']}\">"
                        f"{html.escape(m['subject'])}</a></td><td>{html.escape(m['to'])}</td>"
                        f"<td>{html.escape(m['receivedAt'])}</td></tr>"
                        for m in reversed(inbox.messages)
                    )
                body = (
                    "<h1>Mail catcher</h1><p>Messages the product sent. Nothing here leaves this machine.</p>"
                    "<table><tr><th>#</th><th>Subject</th><th>To</th><th>Received</th></tr>"
                    f"{rows}</table>"
                )
                return self.reply(200, PAGE.format(title="Mail catcher", body=body), "text/html; charset=utf-8")
            if len(parts) >= 2 and parts[0] == "messages":
                m = self.find(parts[1])
                if m is None:
                    return self.reply(404, "no such message", "text/plain")
                if len(parts) == 3 and parts[2] == "html":
                    return self.reply(
                        200,
                        m["html"] or "",
                        "text/html; charset=utf-8",
                        csp="default-src 'none'; style-src 'unsafe-inline'",
                    )
                frame = (
                    f"<iframe sandbox src=\"/messages/{m['id']}/html\" title=\"HTML part\"></iframe>"
                    if m["html"]
                    else ""
                )
                body = (
                    f"<p><a href=\"/\">Inbox</a></p><h1>{html.escape(m['subject'])}</h1>"
                    f"<p>From {html.escape(m['from'])} to {html.escape(m['to'])}</p>{frame}"
                    f"<h2>Text part</h2><pre>{html.escape(m['text'] or '')}</pre>"
                )
                return self.reply(200, PAGE.format(title=html.escape(m["subject"]), body=body), "text/html; charset=utf-8")
            return self.reply(404, "not found", "text/plain")

        def do_DELETE(self):
            if self.path.split("?")[0].rstrip("/") == "/api/messages":
                with inbox.lock:
                    inbox.messages.clear()
                return self.reply(204, "", "text/plain")
            return self.reply(404, "not found", "text/plain")

        def do_POST(self):
            if self.path.split("?")[0].rstrip("/") != "/api/faults":
                return self.reply(404, "not found", "text/plain")
            length = int(self.headers.get("Content-Length") or 0)
            try:
                faults = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                return self.reply(400, "body must be JSON", "text/plain")
            with inbox.lock:
                inbox.reject_next = int(faults.get("rejectNext", 0))
                inbox.reject_code = int(faults.get("code", 451))
                inbox.delay_data = float(faults.get("delayData", 0))
                inbox.delay_rcpt = float(faults.get("delayRcpt", 0))
            return self.reply(204, "", "text/plain")

    return Http


def split_addr(value):
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smtp", default="127.0.0.1:1025")
    parser.add_argument("--http", default="127.0.0.1:8025")
    parser.add_argument("--auth", help="user:password required by AUTH PLAIN/LOGIN")
    parser.add_argument("--starttls-cert")
    parser.add_argument("--starttls-key")
    args = parser.parse_args()

    inbox = Inbox()
    smtp_host, smtp_port = split_addr(args.smtp)
    kwargs = {}
    if args.auth:
        user, _, password = args.auth.partition(":")
        kwargs["authenticator"] = Authenticator(user, password)
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = bool(args.starttls_cert)
    if args.starttls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.starttls_cert, args.starttls_key)
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = True
    controller = Controller(Handler(inbox), hostname=smtp_host, port=smtp_port, **kwargs)
    if smtp_port == 0:
        # aiosmtpd needs a concrete port; take a free one from the OS.
        import socket

        with socket.socket() as probe:
            probe.bind((smtp_host, 0))
            controller.port = probe.getsockname()[1]
    controller.start()

    http_host, http_port = split_addr(args.http)
    server = ThreadingHTTPServer((http_host, http_port), make_http_handler(inbox))
    bound_host, bound_port = server.server_address[:2]
    print(
        f"mailcatcher ready smtp={smtp_host}:{controller.port} http=http://{bound_host}:{bound_port}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
