"""A counting SMTP sink (aiosmtpd) for the benchmark: accepts, counts and discards.

Usage: python bench/sink.py PORT STATS_FILE [CERT KEY]. With a certificate it requires
STARTTLS, as a relay reached over the internet does. On SIGTERM it writes
{"messages": n, "unique_message_ids": m} to STATS_FILE and exits.
"""

import json
import re
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class CountingHandler:
    def __init__(self):
        self.messages = 0
        self.ids = set()

    async def handle_DATA(self, server, session, envelope):
        self.messages += 1
        match = _MESSAGE_ID.search(envelope.original_content[:4096])
        if match:
            self.ids.add(match.group(1))
        return "250 OK"


def main() -> None:
    port, stats_file = int(sys.argv[1]), sys.argv[2]
    handler = CountingHandler()
    tls = {}
    if len(sys.argv) > 4:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
        tls = {"tls_context": context, "require_starttls": True}
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False, **tls)
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    controller.stop()
    with open(stats_file, "w") as handle:
        json.dump({"messages": handler.messages, "unique_message_ids": len(handler.ids)}, handle)


if __name__ == "__main__":
    main()
