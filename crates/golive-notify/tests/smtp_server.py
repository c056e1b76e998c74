"""A local SMTP server for golive-notify's email tests (aiosmtpd from PyPI,
installed by scripts/setup.sh).

Listens on a free loopback port and prints JSON lines to stdout: first
{"port": N}, then {"auth": ...} for each AUTH and {"data": ..., "code": ...}
for each DATA (envelope and raw message bytes). argv[1] is the comma-separated
list of replies to successive DATA commands (the last repeats), e.g.
"451,250"; AUTH succeeds for user `golive`, password `s3cr@t`.
"""

import asyncio
import json
import logging
import sys
import warnings

# aiosmtpd warns about its own Session.login_data on every AUTH.
warnings.filterwarnings("ignore", category=DeprecationWarning)
logging.getLogger("mail.log").setLevel(logging.ERROR)

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

REPLIES = {
    "250": "250 2.0.0 OK queued",
    "451": "451 4.3.0 Try again later",
    "550": "550 5.1.1 Mailbox unavailable",
}


def emit(obj):
    print(json.dumps(obj), flush=True)


class Handler:
    def __init__(self, codes):
        self.codes = codes
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        code = self.codes[min(self.n, len(self.codes) - 1)]
        self.n += 1
        emit({
            "code": code,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.original_content.decode("utf-8"),
        })
        return REPLIES[code]


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"golive"
        and auth_data.password == b"s3cr@t"
    )
    emit({"auth": mechanism, "ok": ok})
    return AuthResult(success=ok)


async def main():
    handler = Handler(sys.argv[1].split(","))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="mx.test",
            authenticator=authenticator,
            auth_require_tls=False,
        ),
        "127.0.0.1",
        0,
    )
    emit({"port": server.sockets[0].getsockname()[1]})
    await server.serve_forever()


asyncio.run(main())
