"""A real DNS server for tests: dnslib answering from a dict of records, on a free loopback UDP port."""

from dnslib import AAAA, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer

_RDATA = {"A": A, "AAAA": AAAA, "MX": lambda value: MX(value.split()[1], int(value.split()[0])), "TXT": TXT, "PTR": PTR}


class _Records(BaseResolver):
    def __init__(self, records: dict[tuple[str, str], list]):
        self.records = {(DNSLabel(name), rdtype): values for (name, rdtype), values in records.items()}
        self.names = {name for name, _ in self.records}

    def resolve(self, request, handler):
        reply = request.reply()
        name, rdtype = request.q.qname, QTYPE[request.q.qtype]
        for value in self.records.get((name, rdtype), []):
            reply.add_answer(RR(name, request.q.qtype, rdata=_RDATA[rdtype](value), ttl=60))
        if name not in self.names:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class DnsServer:
    """Serve records {(name, "TXT"): [value, …]} on 127.0.0.1:port; a TXT value may be a list of strings.

    MX values are "PREFERENCE HOST". Names without records answer NXDOMAIN; a known name asked
    for a type it lacks answers NOERROR with no data, as real servers do.
    """

    def __init__(self, records: dict[tuple[str, str], list]):
        self.records = records

    def __enter__(self) -> "DnsServer":
        silent = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", logf=lambda text: None)
        self._server = DNSServer(_Records(self.records), address="127.0.0.1", port=0, logger=silent)
        self.port = self._server.server.server_address[1]
        self._server.start_thread()
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self._server.stop()
        self._server.server.server_close()
